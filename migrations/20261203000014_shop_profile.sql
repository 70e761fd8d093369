-- A tenant's own LLM timeout and retries (absent: the platform's [llm] values).
ALTER TABLE llm_settings ADD COLUMN timeout_ms integer CHECK (timeout_ms BETWEEN 1000 AND 600000);
ALTER TABLE llm_settings ADD COLUMN max_retries integer CHECK (max_retries BETWEEN 0 AND 10);
