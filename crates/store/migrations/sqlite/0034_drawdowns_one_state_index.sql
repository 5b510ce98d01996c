-- Every change of a drawdown moved its entry in drawdowns_by_state (state, updated_at_ms), on
-- the confirmation path and every payout step, while each query it served (a state's count,
-- the oldest of a small review queue, the borrowers with drawdowns in some states) is answered
-- as well through drawdowns_to_close (state, id), which moves only when the state does (#15:
-- fewer pages written per confirmation). Dropping an index is safe for processes still running
-- the previous build.
DROP INDEX drawdowns_by_state;
