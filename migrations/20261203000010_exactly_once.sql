-- An AUTO_SEND draft waits in the outbox for its human delay as `queued`, not `pending`:
-- `pending` means "waiting for an operator", and an operator who approved a queued draft
-- used to queue a second send next to the first.
ALTER TABLE ai_suggestions DROP CONSTRAINT ai_suggestions_status_check;
ALTER TABLE ai_suggestions ADD CONSTRAINT ai_suggestions_status_check CHECK (status IN
    ('pending', 'queued', 'approved', 'edited', 'rejected', 'sent', 'superseded', 'expired'));
UPDATE ai_suggestions SET status = 'queued' WHERE status = 'pending' AND decision = 'AUTO_SEND';

-- Escalations opened without a draft (a mail over the size limit, drafting that failed on
-- every attempt) carry the key of what caused them, so a redelivery or a second give-up
-- opens none twice.
ALTER TABLE escalation_events ADD COLUMN idempotency_key text UNIQUE;

-- A dispatcher leases a row for one part's send and commits before it calls the platform,
-- so no row lock is held across the network; the lease is renewed after each part and
-- checked when the outcome is recorded. A dispatcher that dies mid-send leaves a lease that
-- runs out, and the row is sent again (at least once towards the platform).
ALTER TABLE outbox ADD COLUMN lease uuid, ADD COLUMN leased_until timestamptz;

-- How many deliveries of an inbound job ran to their end (stored, consent applied,
-- escalated or scheduled, acknowledged next). A receipt at 0 is a message stored by a
-- worker that died before finishing it; its redelivery finishes it. The fault suite and
-- the tests wait on this fact instead of a clock.
ALTER TABLE inbound_receipts ADD COLUMN handled integer NOT NULL DEFAULT 0;
