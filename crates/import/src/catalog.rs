//! A catalogue file as product rows: CSV with a header row, or JSON (an array of objects,
//! or `{"products": [...]}`). `sku`, `name` and `price` are required; `description`,
//! `currency` and `stock` are optional; any other column (colour, size…) is an attribute.

use std::collections::{BTreeMap, HashSet};

use rust_decimal::Decimal;
use serde_json::Value;

use crate::ImportError;

/// One product as a shop's file gives it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProductRow {
    pub sku: String,
    pub name: String,
    pub description: String,
    /// At most two decimals, not negative.
    pub price: Decimal,
    /// ISO 4217; absent, the shop's currency.
    pub currency: Option<String>,
    pub stock: i32,
    pub attributes: BTreeMap<String, String>,
}

impl From<ProductRow> for switchboard_store::ProductInput {
    fn from(r: ProductRow) -> Self {
        Self {
            sku: r.sku,
            name: r.name,
            description: r.description,
            price: r.price.to_string(),
            currency: r.currency,
            stock: r.stock,
            attributes: r.attributes,
        }
    }
}

/// The rows of `name` (`.csv` or `.json`), checked: every error names its row.
pub fn parse_catalog(name: &str, content: &[u8]) -> Result<Vec<ProductRow>, ImportError> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let records = match ext.as_deref() {
        Some("csv") => csv_records(content)?,
        Some("json") => json_records(content)?,
        _ => {
            return Err(ImportError::UnknownKind {
                file: name.to_owned(),
                expected: "CSV or JSON",
            });
        }
    };
    let mut seen = HashSet::new();
    records
        .into_iter()
        .enumerate()
        .map(|(i, fields)| {
            let row =
                product(fields).map_err(|e| ImportError::Invalid(format!("row {}: {e}", i + 1)))?;
            if !seen.insert(row.sku.clone()) {
                return Err(ImportError::Invalid(format!(
                    "row {}: sku {:?} appears twice",
                    i + 1,
                    row.sku
                )));
            }
            Ok(row)
        })
        .collect()
}

pub(crate) type Fields = BTreeMap<String, String>;

/// A CSV file's rows as lower-cased header → non-empty value.
pub(crate) fn csv_records(content: &[u8]) -> Result<Vec<Fields>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(content);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::Invalid(format!("the header row: {e}")))?
        .iter()
        .map(|h| h.to_lowercase())
        .collect();
    reader
        .records()
        .enumerate()
        .map(|(i, r)| {
            let r = r.map_err(|e| ImportError::Invalid(format!("row {}: {e}", i + 1)))?;
            Ok(headers
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .filter(|(_, v)| !v.is_empty())
                .collect())
        })
        .collect()
}

fn json_records(content: &[u8]) -> Result<Vec<Fields>, ImportError> {
    let v: Value = serde_json::from_slice(content)
        .map_err(|e| ImportError::Invalid(format!("not JSON: {e}")))?;
    let items = match v {
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove("products") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(ImportError::Invalid(
                    "expected an array of products, or {\"products\": [...]}".into(),
                ));
            }
        },
        _ => return Err(ImportError::Invalid("expected an array of products".into())),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            fields(item).map_err(|e| ImportError::Invalid(format!("row {}: {e}", i + 1)))
        })
        .collect()
}

/// One product object's fields; its `attributes` object, if any, flattened among them.
fn fields(item: Value) -> Result<Fields, String> {
    let Value::Object(o) = item else {
        return Err("not an object".into());
    };
    let mut fields = Fields::new();
    for (k, v) in o {
        match (k.as_str(), v) {
            ("attributes", Value::Object(attrs)) => {
                for (ak, av) in attrs {
                    fields.insert(ak.to_lowercase(), scalar(&av));
                }
            }
            (_, Value::Null) => {}
            (_, v) => {
                fields.insert(k.to_lowercase(), scalar(&v));
            }
        }
    }
    Ok(fields)
}

/// One product as a shop system writes it to `PUT /products/{sku}`: the SKU is the path's,
/// and a body that names another is refused.
pub fn parse_product(sku: &str, body: Value) -> Result<ProductRow, ImportError> {
    let mut f = fields(body).map_err(ImportError::Invalid)?;
    if f.get("sku").is_some_and(|s| s != sku) {
        return Err(ImportError::Invalid(format!(
            "the body's sku is not the path's {sku:?}"
        )));
    }
    f.insert("sku".into(), sku.to_owned());
    product(f).map_err(ImportError::Invalid)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

fn product(mut f: Fields) -> Result<ProductRow, String> {
    let mut take = |k: &str| f.remove(k).filter(|v| !v.is_empty());
    let sku = take("sku").ok_or("sku is missing")?;
    if sku.chars().count() > 100 {
        return Err(format!("sku {sku:?} is longer than 100 characters"));
    }
    let name = take("name").ok_or_else(|| format!("{sku}: name is missing"))?;
    let price: Decimal = take("price")
        .ok_or_else(|| format!("{sku}: price is missing"))?
        .parse()
        .map_err(|_| format!("{sku}: price is not a number such as 14.90"))?;
    if price.is_sign_negative() || price.scale() > 2 || price > Decimal::from(9_999_999_999i64) {
        return Err(format!(
            "{sku}: price {price} must be 0 or more, with at most two decimals"
        ));
    }
    let currency = match take("currency") {
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(c) => return Err(format!("{sku}: currency {c:?} is not an ISO 4217 code")),
        None => None,
    };
    let stock = match take("stock") {
        Some(s) => s
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{sku}: stock {s:?} is not a whole number of 0 or more"))?,
        None => 0,
    };
    let description = take("description").unwrap_or_default();
    Ok(ProductRow {
        sku,
        name,
        description,
        price,
        currency,
        stock,
        attributes: f,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn csv_rows_with_attributes() {
        let csv = "SKU,Name,Description,Price,Currency,Stock,Colour,Size\n\
                   MUG-01,Ceramic mug,\"350 ml, dishwasher safe\",14.90,eur,42,white,\n\
                   TEE-03,T-shirt,,29,,,navy,XL\n";
        let rows = parse_catalog("products.csv", csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].description, "350 ml, dishwasher safe");
        assert_eq!(rows[0].price.to_string(), "14.90");
        assert_eq!(rows[0].currency.as_deref(), Some("EUR"));
        assert_eq!(rows[0].attributes["colour"], "white");
        assert!(
            !rows[0].attributes.contains_key("size"),
            "empty cells are absent"
        );
        assert_eq!(rows[1].stock, 0);
        assert_eq!(rows[1].currency, None);
        assert_eq!(rows[1].attributes["size"], "XL");
    }

    #[test]
    fn json_rows_and_errors_name_the_row() {
        let json = r#"{"products": [
            {"sku": "BOT-02", "name": "Bottle", "price": 24.9, "stock": 3,
             "attributes": {"colour": "blue"}, "material": "steel"}]}"#;
        let rows = parse_catalog("c.json", json.as_bytes()).unwrap();
        assert_eq!(rows[0].price.to_string(), "24.9");
        assert_eq!(rows[0].attributes["colour"], "blue");
        assert_eq!(rows[0].attributes["material"], "steel");

        let bad = |csv: &str| {
            parse_catalog("p.csv", csv.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(bad("sku,name,price\nA,Mug,-1\n").contains("row 1"));
        assert!(bad("sku,name,price\nA,Mug,1.999\n").contains("two decimals"));
        assert!(bad("sku,name,price\nA,Mug,1\nA,Cup,2\n").contains("twice"));
        assert!(bad("sku,name,price,stock\nA,Mug,1,lots\n").contains("stock"));
        assert!(bad("name,price\nMug,1\n").contains("sku is missing"));
        assert!(parse_catalog("p.xlsx", b"").is_err());
    }
}
