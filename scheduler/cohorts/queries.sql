-- Statements of the cohort reader (schedules' cohorts and watchers' SQL). Every value is bound.

-- name: session_limits :one
-- The server-side limits of this read, for the rest of its (READ ONLY, rolled back) transaction: each
-- statement is bounded by the whole read's deadline, and a session left idle in its transaction longer than
-- the deadline is ended by the server (a consumer that stalls cannot hold the snapshot). A query may lift
-- them; the reader's own deadline (cancel, then cut the connection) does not depend on them.
SELECT set_config('statement_timeout', %(limit)s, true),
       set_config('idle_in_transaction_session_timeout', %(limit)s, true);

-- name: cohort_count :one
-- The cohort's size, in the same snapshot as its rows; `{cohort}` is the operator's query.
SELECT count(*) FROM ({cohort}) AS cohort;
