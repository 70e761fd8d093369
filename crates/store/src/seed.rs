//! The demo tenant that `switchboard up` creates on first start: a small online shop.

use uuid::Uuid;

use crate::{Result, Store};

pub const DEMO_SLUG: &str = "demo";

const DOCS: &[(&str, &str, &str)] = &[
    (
        "Shipping and delivery",
        "ship shipping deliver delivery send post parcel courier dhl germany berlin europe cost fee much how long",
        "We ship every order with DHL. Delivery within Germany, Berlin included, takes 1-2 business days and costs 4.90 EUR; it is free from 50 EUR. Delivery to the rest of the EU takes 3-5 business days and costs 9.90 EUR.",
    ),
    (
        "Returns and refunds",
        "return refund send back exchange money back wrong size",
        "You can return any unused item within 30 days of delivery. Print the free return label from your order page and drop the parcel at any DHL point. We refund to your original payment method within 5 business days of receiving the return.",
    ),
    (
        "Opening hours and contact",
        "open opening hours when support contact phone call store shop closed weekend",
        "Our support team is available Monday to Friday from 9:00 to 18:00 (Berlin time). You can reach us here in the chat, by email at support@shop.example or by phone at +49 30 1234567.",
    ),
    (
        "Payment methods",
        "pay payment card credit paypal invoice klarna visa mastercard",
        "We accept Visa, Mastercard, PayPal and Klarna invoice. Your card is charged when the order ships.",
    ),
    (
        "Order tracking",
        "track tracking where order status parcel number",
        "As soon as your order ships we email you a DHL tracking link. You can also see the status of every order on your account page.",
    ),
];

const PRODUCTS: &[(&str, &str, &str, &str, i32, &str)] = &[
    (
        "MUG-01",
        "Ceramic coffee mug",
        "A 350 ml stoneware coffee mug, dishwasher safe, in white or charcoal.",
        "14.90",
        42,
        r#"{"colour": "white, charcoal"}"#,
    ),
    (
        "BOT-02",
        "Insulated water bottle",
        "A 750 ml steel water bottle that keeps drinks cold for 24 hours.",
        "24.90",
        0,
        r#"{"colour": "steel"}"#,
    ),
    (
        "TEE-03",
        "Organic cotton t-shirt",
        "A heavyweight organic cotton t-shirt in sizes S to XXL.",
        "29.00",
        17,
        r#"{"size": "S, M, L, XL, XXL"}"#,
    ),
];

impl Store {
    /// Creates the demo tenant with its web-chat channel, knowledge base, catalogue and
    /// settings under which knowledge-base answers to price, availability and shipping
    /// questions are sent on their own. Does nothing if the tenant exists.
    pub async fn seed_demo(&self) -> Result<Uuid> {
        let mut tx = self.pool.begin().await?;
        let created: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO tenants (id, slug, name, timezone, currency, holding_message)
             VALUES ($1, $2, 'Demo Shop', 'Europe/Berlin', 'EUR',
                     'Thanks for your message. A member of our team will get back to you shortly.')
             ON CONFLICT (slug) DO NOTHING RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(DEMO_SLUG)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(tenant_id) = created else {
            drop(tx);
            return self.tenant_id(DEMO_SLUG).await;
        };
        sqlx::query(
            "INSERT INTO channels (id, tenant_id, kind, name) VALUES ($1, $2, 'webchat', 'Website chat')",
        )
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        for (title, keywords, body) in DOCS {
            sqlx::query(
                "INSERT INTO knowledge_docs (id, tenant_id, title, keywords, body) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant_id)
            .bind(title)
            .bind(keywords)
            .bind(body)
            .execute(&mut *tx)
            .await?;
        }
        for (sku, name, description, price, stock, attributes) in PRODUCTS {
            sqlx::query(
                "INSERT INTO products (id, tenant_id, sku, name, description, price, currency, stock,
                                       attributes)
                 VALUES ($1, $2, $3, $4, $5, $6::numeric, 'EUR', $7, $8::jsonb)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant_id)
            .bind(sku)
            .bind(name)
            .bind(description)
            .bind(price)
            .bind(stock)
            .bind(attributes)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO decision_settings (tenant_id, autosend_allowed, default_mode, t_auto)
             VALUES ($1, true, 'semi-auto', 0.75)",
        )
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(tenant_id)
    }
}
