-- Lines granted before their timers existed get them: the expiry written to the log when the
-- validity ends, and the end of a freeze that has one. Job ids match the ones new lines get; a
-- job that runs before its time hands itself back until then. Lines already expired get no
-- late entry (their state already shows it), so no borrower is told months afterwards.

INSERT INTO jobs (id, kind, payload, status, attempts, max_attempts, run_at_ms, created_at_ms, updated_at_ms)
SELECT 'line-expiry:' || id, 'credit_line.expiry', json_build_object('line_id', id)::text, 'pending', 0, 8,
       valid_until_ms, updated_at_ms, updated_at_ms
FROM credit_lines WHERE state <> 'closed' AND valid_until_ms > (extract(epoch FROM now()) * 1000)::bigint
ON CONFLICT (id) DO NOTHING;

INSERT INTO jobs (id, kind, payload, status, attempts, max_attempts, run_at_ms, created_at_ms, updated_at_ms)
SELECT 'line-freeze-end:' || l.id || ':' || e.seq, 'credit_line.freeze_end',
       json_build_object('line_id', l.id, 'until', l.status::jsonb ->> 'until')::text, 'pending', 0, 8,
       l.updated_at_ms, l.updated_at_ms, l.updated_at_ms
FROM credit_lines l
JOIN credit_line_events e ON e.line_id = l.id
    AND e.seq = (SELECT MAX(seq) FROM credit_line_events WHERE line_id = l.id)
WHERE l.state = 'frozen' AND (l.status::jsonb ->> 'until') IS NOT NULL
ON CONFLICT (id) DO NOTHING;
