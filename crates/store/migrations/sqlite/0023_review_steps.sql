-- Steps a person takes on a drawdown in review (asking the channel, settling a payout by hand)
-- name who took them and what they wrote.
ALTER TABLE drawdown_transitions ADD COLUMN actor TEXT;
ALTER TABLE drawdown_transitions ADD COLUMN note TEXT;
