-- Leads: the contact details a customer gave in a conversation (name, email, phone, company,
-- interest), captured by the drafting provider and corrected by operators. A field an
-- operator set is listed in lead_corrected, and no capture overwrites it.
ALTER TABLE customers
    ADD COLUMN lead jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN lead_corrected text[] NOT NULL DEFAULT '{}',
    ADD COLUMN lead_updated_at timestamptz;
CREATE INDEX customers_leads ON customers (tenant_id, lead_updated_at) WHERE lead <> '{}';
