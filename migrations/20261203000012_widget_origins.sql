-- The sites allowed to embed a shop's chat widget in a frame (besides the gateway itself).
ALTER TABLE tenants ADD COLUMN widget_origins text[] NOT NULL DEFAULT '{}';
