/// A knowledge document or product retrieved for a customer's question.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// `doc:<uuid>` or `product:<sku>`, as cited in `used_sources`.
    pub reference: String,
    pub title: String,
    pub body: String,
    /// Share of the question's search terms (after stemming and stop words) that the
    /// source contains, in [0, 1]: what the responder uses as similarity.
    pub coverage: f64,
    /// What orders sources, best first: the share of the question's terms the source
    /// contains, each weighed by how rare it is among the shop's sources, plus the same
    /// share among the title's words, plus a tie-break from PostgreSQL's `ts_rank_cd`.
    pub rank: f64,
    pub product: Option<Product>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub price: String,
    pub currency: String,
    pub stock: i32,
    /// What the catalogue says of it besides: colour, size, material…
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// What an operator made of an earlier draft for a similar customer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub customer: String,
    /// The reply that went out (as approved or edited), or the draft that was rejected.
    pub reply: String,
    /// Why the operator rejected `reply`; `None` when it was approved.
    pub rejected: Option<String>,
}
