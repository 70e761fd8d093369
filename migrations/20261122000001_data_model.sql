-- The whole data model of design section 3. Every row carries tenant_id and every
-- query filters by it; the CHECK lists mirror the enums in switchboard-core.

CREATE TABLE tenants (
    id                  uuid PRIMARY KEY,
    slug                text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name                text NOT NULL,
    language            text NOT NULL DEFAULT 'en',
    text_search_config  regconfig NOT NULL DEFAULT 'english',
    tone                text NOT NULL DEFAULT 'friendly',
    timezone            text NOT NULL DEFAULT 'UTC',
    currency            text NOT NULL DEFAULT 'EUR',
    working_hours_start time NOT NULL DEFAULT '09:00',
    working_hours_end   time NOT NULL DEFAULT '18:00',
    working_days        smallint[] NOT NULL DEFAULT '{1,2,3,4,5}',
    escalation_contacts jsonb NOT NULL DEFAULT '[]',
    holding_message     text,
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channels (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    kind        text NOT NULL CHECK (kind IN ('telegram', 'whatsapp', 'email', 'discord', 'webchat')),
    name        text NOT NULL,
    config      jsonb NOT NULL DEFAULT '{}',
    -- AES-256-GCM (nonce || ciphertext) under the master key from the environment.
    credentials bytea,
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, kind, name)
);
CREATE INDEX channels_tenant ON channels (tenant_id);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    email          text NOT NULL UNIQUE,
    role           text NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    password_hash  text,
    api_token_hash text UNIQUE,
    failed_logins  integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    channel_id  uuid NOT NULL REFERENCES channels (id),
    external_id text NOT NULL,
    name        text,
    phone       text,
    email       text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    unreachable boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, channel_id, external_id)
);

CREATE TABLE conversations (
    id                       uuid PRIMARY KEY,
    tenant_id                uuid NOT NULL REFERENCES tenants (id),
    channel_id               uuid NOT NULL REFERENCES channels (id),
    customer_id              uuid NOT NULL REFERENCES customers (id),
    -- Separates parallel threads of one customer (email); empty elsewhere.
    thread_key               text NOT NULL DEFAULT '',
    status                   text NOT NULL DEFAULT 'active' CHECK (status IN
                                 ('active', 'waiting_customer', 'waiting_operator', 'escalated', 'resolved', 'closed')),
    mode                     text NOT NULL DEFAULT 'semi-auto' CHECK (mode IN ('learning', 'semi-auto', 'auto')),
    assigned_user_id         uuid REFERENCES users (id),
    operator_active_until    timestamptz,
    last_customer_message_at timestamptz,
    unread_count             integer NOT NULL DEFAULT 0,
    version                  integer NOT NULL DEFAULT 0,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
-- A customer has at most one open conversation per thread; closed ones are history.
CREATE UNIQUE INDEX conversations_open_per_customer
    ON conversations (tenant_id, customer_id, thread_key) WHERE status <> 'closed';
CREATE INDEX conversations_inbox ON conversations (tenant_id, updated_at DESC);

CREATE TABLE messages (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    conversation_id   uuid NOT NULL REFERENCES conversations (id),
    channel_id        uuid NOT NULL REFERENCES channels (id),
    role              text NOT NULL CHECK (role IN ('customer', 'assistant', 'operator', 'system')),
    content           text NOT NULL,
    attachments       jsonb NOT NULL DEFAULT '[]',
    metadata          jsonb NOT NULL DEFAULT '{}',
    external_id       text,
    delivery_status   text CHECK (delivery_status IN ('queued', 'sent', 'delivered', 'read', 'failed')),
    delivery_error    text,
    in_reply_to       uuid REFERENCES messages (id),
    email_message_id  text,
    email_in_reply_to text,
    email_references  text[],
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    edited_at         timestamptz,
    UNIQUE (channel_id, external_id)
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at);
CREATE INDEX messages_email_id ON messages (tenant_id, email_message_id) WHERE email_message_id IS NOT NULL;

CREATE TABLE ai_suggestions (
    id                    uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL REFERENCES tenants (id),
    conversation_id       uuid NOT NULL REFERENCES conversations (id),
    -- The newest customer message this draft answers: one draft per burst.
    based_on_message_id   uuid NOT NULL UNIQUE REFERENCES messages (id),
    draft                 text NOT NULL,
    provider              text NOT NULL,
    intent                text NOT NULL,
    confidence            double precision NOT NULL,
    similarity_score      double precision NOT NULL,
    intent_score          double precision NOT NULL,
    self_check_score      double precision NOT NULL,
    used_sources          jsonb NOT NULL DEFAULT '[]',
    penalties             jsonb NOT NULL DEFAULT '[]',
    explanations          jsonb NOT NULL DEFAULT '[]',
    missing_fields        jsonb NOT NULL DEFAULT '[]',
    source_conflicts      jsonb NOT NULL DEFAULT '[]',
    decision              text NOT NULL CHECK (decision IN ('AUTO_SEND', 'NEED_APPROVAL', 'ESCALATE')),
    autosend_eligible     boolean NOT NULL,
    autosend_block_reason text,
    status                text NOT NULL DEFAULT 'pending' CHECK (status IN
                              ('pending', 'approved', 'edited', 'rejected', 'sent', 'superseded', 'expired')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_suggestions_conversation ON ai_suggestions (conversation_id, created_at);
CREATE INDEX ai_suggestions_pending ON ai_suggestions (tenant_id, status) WHERE status = 'pending';

CREATE TABLE human_actions (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    conversation_id uuid NOT NULL REFERENCES conversations (id),
    suggestion_id   uuid REFERENCES ai_suggestions (id),
    user_id         uuid REFERENCES users (id),
    action          text NOT NULL CHECK (action IN ('approve', 'edit', 'reject', 'escalate', 'takeover', 'release')),
    original_text   text,
    edited_text     text,
    reason          text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE escalation_events (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    conversation_id    uuid NOT NULL REFERENCES conversations (id),
    suggestion_id      uuid REFERENCES ai_suggestions (id),
    reason             text NOT NULL,
    summary            text NOT NULL,
    suggested_response text,
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'handled', 'dismissed')),
    handled_by         uuid REFERENCES users (id),
    handled_at         timestamptz,
    last_notified_at   timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX escalation_events_pending ON escalation_events (tenant_id, status);

-- Per-tenant settings. A missing row means the seed defaults of design sections 4 and 5.
CREATE TABLE decision_settings (
    tenant_id                uuid PRIMARY KEY REFERENCES tenants (id),
    t_auto                   double precision NOT NULL DEFAULT 0.80,
    t_escalate               double precision NOT NULL DEFAULT 0.40,
    autosend_allowed         boolean NOT NULL DEFAULT false,
    -- The mode new conversations start in.
    default_mode             text NOT NULL DEFAULT 'semi-auto' CHECK (default_mode IN ('learning', 'semi-auto', 'auto')),
    intents_autosend_allowed text[] NOT NULL DEFAULT '{price,availability,shipping,other}',
    intents_force_handoff    text[] NOT NULL DEFAULT '{discount,complaint}',
    weights                  jsonb NOT NULL DEFAULT '{"similarity": 0.45, "intent": 0.25, "self_check": 0.30}',
    penalties                jsonb NOT NULL DEFAULT '{"source_conflict": 0.15, "missing_field": 0.10, "no_sources": 0.25}',
    debounce_quiet_ms        integer NOT NULL DEFAULT 1500,
    debounce_cap_ms          integer NOT NULL DEFAULT 8000,
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CHECK (0 <= t_escalate AND t_escalate < t_auto AND t_auto <= 1),
    CHECK (0 <= debounce_quiet_ms AND debounce_quiet_ms <= debounce_cap_ms)
);

CREATE TABLE human_delay_settings (
    tenant_id                uuid PRIMARY KEY REFERENCES tenants (id),
    enabled                  boolean NOT NULL DEFAULT false,
    profiles                 jsonb NOT NULL DEFAULT '{
        "short":  {"base_min_ms": 2000, "base_max_ms": 4000,  "typing_chars_per_sec": 40, "jitter_ms": 500},
        "medium": {"base_min_ms": 4000, "base_max_ms": 8000,  "typing_chars_per_sec": 35, "jitter_ms": 1000},
        "long":   {"base_min_ms": 8000, "base_max_ms": 15000, "typing_chars_per_sec": 30, "jitter_ms": 2000}}',
    short_max_chars          integer NOT NULL DEFAULT 80,
    medium_max_chars         integer NOT NULL DEFAULT 300,
    min_delay_ms             integer NOT NULL DEFAULT 3000,
    max_delay_ms             integer NOT NULL DEFAULT 120000,
    night_mode               text NOT NULL DEFAULT 'DELAY' CHECK (night_mode IN ('DELAY', 'AUTO_REPLY', 'DISABLE')),
    night_delay_multiplier   double precision NOT NULL DEFAULT 3.0,
    night_auto_reply_text    text,
    typing_indicator_enabled boolean NOT NULL DEFAULT true,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ai_training_policies (
    tenant_id               uuid PRIMARY KEY REFERENCES tenants (id),
    always_escalate_intents text[] NOT NULL DEFAULT '{}',
    forbidden_topics        text[] NOT NULL DEFAULT '{}',
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- A NULL tenant_id is the global value; a tenant's row overrides it.
CREATE TABLE feature_flags (
    id         uuid PRIMARY KEY,
    tenant_id  uuid REFERENCES tenants (id),
    key        text NOT NULL,
    enabled    boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (tenant_id, key)
);

CREATE TABLE knowledge_docs (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    title       text NOT NULL,
    body        text NOT NULL,
    -- Extra search words (synonyms a customer might use), weighted like the title.
    keywords    text NOT NULL DEFAULT '',
    search_config regconfig NOT NULL DEFAULT 'english',
    tsv         tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector(search_config, title), 'A')
                    || setweight(to_tsvector(search_config, keywords), 'A')
                    || setweight(to_tsvector(search_config, body), 'B')) STORED,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_docs_tsv ON knowledge_docs USING gin (tsv);
CREATE INDEX knowledge_docs_tenant ON knowledge_docs (tenant_id);

CREATE TABLE products (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    sku           text NOT NULL,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    price         numeric(12, 2) NOT NULL,
    currency      text NOT NULL,
    stock         integer NOT NULL DEFAULT 0,
    search_config regconfig NOT NULL DEFAULT 'english',
    tsv           tsvector GENERATED ALWAYS AS (
                      setweight(to_tsvector(search_config, name), 'A')
                      || setweight(to_tsvector(search_config, description), 'B')) STORED,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, sku)
);
CREATE INDEX products_tsv ON products USING gin (tsv);

CREATE TABLE consents (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    customer_id uuid NOT NULL REFERENCES customers (id),
    channel_id  uuid NOT NULL REFERENCES channels (id),
    status      text NOT NULL CHECK (status IN ('granted', 'revoked')),
    changed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, channel_id)
);

-- Scheduled sends. The dispatcher claims due rows with FOR UPDATE SKIP LOCKED;
-- 'dead' and 'failed' rows are the dead letters, listed and replayable.
CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    conversation_id uuid NOT NULL REFERENCES conversations (id),
    channel_id      uuid NOT NULL REFERENCES channels (id),
    suggestion_id   uuid REFERENCES ai_suggestions (id),
    -- The id the sent message gets in `messages`, fixed up front so a retry cannot fork it.
    message_id      uuid NOT NULL UNIQUE,
    role            text NOT NULL CHECK (role IN ('assistant', 'operator', 'system')),
    body            text NOT NULL,
    in_reply_to     uuid REFERENCES messages (id),
    idempotency_key text NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN
                        ('pending', 'sent', 'failed', 'dead', 'superseded')),
    due_at          timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_dead ON outbox (tenant_id, created_at) WHERE status IN ('failed', 'dead');

CREATE TABLE channel_cursors (
    channel_id    uuid PRIMARY KEY REFERENCES channels (id),
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    imap_uidvalidity bigint,
    imap_last_uid    bigint,
    telegram_offset  bigint,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The dedup truth: one row per platform delivery, claimed in the same transaction
-- that stores the message.
CREATE TABLE inbound_receipts (
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    channel_id        uuid NOT NULL REFERENCES channels (id),
    provider_event_id text NOT NULL,
    message_id        uuid REFERENCES messages (id),
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, provider_event_id)
);

CREATE TABLE usage (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    day        date NOT NULL,
    provider   text NOT NULL,
    tokens_in  bigint NOT NULL DEFAULT 0,
    tokens_out bigint NOT NULL DEFAULT 0,
    requests   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, provider)
);

CREATE TABLE audit_events (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    actor_type  text NOT NULL CHECK (actor_type IN ('user', 'admin', 'system')),
    actor_id    text NOT NULL,
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   uuid,
    details     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, created_at DESC);
