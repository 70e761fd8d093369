-- How a tenant's replies are drafted. NULL columns fall back to the [llm] configuration.
ALTER TABLE tenants ADD COLUMN formal_address boolean NOT NULL DEFAULT false;
ALTER TABLE tenants ADD COLUMN persona text;

CREATE TABLE llm_settings (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id),
    provider    text CHECK (provider IN ('offline', 'openai')),
    base_url    text,
    -- AES-256-GCM (nonce || ciphertext) under the master key, like channel credentials.
    api_key     bytea,
    model       text,
    temperature real CHECK (temperature BETWEEN 0 AND 2),
    max_tokens  integer CHECK (max_tokens > 0),
    response_format text CHECK (response_format IN ('json_schema', 'json_object')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
