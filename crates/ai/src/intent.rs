/// The intents the classifier knows. The decision settings name them by `as_str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Complaint,
    Discount,
    Price,
    Availability,
    Shipping,
    Other,
}

/// Every intent a draft may carry, by name.
pub const INTENTS: [&str; 6] = [
    "price",
    "availability",
    "shipping",
    "discount",
    "complaint",
    "other",
];

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Complaint => "complaint",
            Intent::Discount => "discount",
            Intent::Price => "price",
            Intent::Availability => "availability",
            Intent::Shipping => "shipping",
            Intent::Other => "other",
        }
    }
}

/// Cues per intent, in priority order: on a tie the earlier intent wins, so that a message
/// which is both a complaint and a shipping question is treated as a complaint, and "how
/// much is shipping" is about shipping.
const CUES: &[(Intent, &[&str])] = &[
    (
        Intent::Complaint,
        &[
            "complain",
            "complaint",
            "broken",
            "damaged",
            "defective",
            "terrible",
            "awful",
            "unacceptable",
            "angry",
            "disappointed",
            "worst",
            "never arrived",
            "still not arrived",
            "scam",
            "lawyer",
            "furious",
            "ridiculous",
        ],
    ),
    (
        Intent::Discount,
        &[
            "discount",
            "coupon",
            "voucher",
            "promo",
            "promotion",
            "deal",
            "cheaper",
            "sale",
            "rebate",
        ],
    ),
    (
        Intent::Shipping,
        &[
            "ship", "deliver", "dhl", "courier", "parcel", "arrive", "postage", "tracking",
        ],
    ),
    (
        Intent::Availability,
        &[
            "in stock",
            "stock",
            "available",
            "availability",
            "sold out",
            "do you have",
            "have you got",
            "restock",
        ],
    ),
    (
        Intent::Price,
        &[
            "price",
            "cost",
            "how much",
            "expensive",
            "cheap",
            "pay for",
            "€",
            "eur",
        ],
    ),
];

/// Keyword intent classifier. The score grows with the number of distinct cues found:
/// one cue is a fair guess, three are near-certain; no cue at all is `other` at 0.5.
pub fn classify(text: &str) -> (Intent, f64) {
    let text = text.to_lowercase();
    let mut best = (Intent::Other, 0usize);
    for (intent, cues) in CUES {
        let hits = cues.iter().filter(|c| text.contains(**c)).count();
        if hits > best.1 {
            best = (*intent, hits);
        }
    }
    let score = match best.1 {
        0 => 0.5,
        1 => 0.75,
        2 => 0.85,
        _ => 0.95,
    };
    (best.0, score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_intent() {
        assert_eq!(classify("Do you ship to Austria?").0, Intent::Shipping);
        assert_eq!(classify("Is the mug in stock?").0, Intent::Availability);
        assert_eq!(classify("What does the bottle cost?").0, Intent::Price);
        assert_eq!(
            classify("Any discount code for students?").0,
            Intent::Discount
        );
        assert_eq!(
            classify("My order arrived broken, this is unacceptable").0,
            Intent::Complaint
        );
        assert_eq!(classify("Hello there"), (Intent::Other, 0.5));
    }

    #[test]
    fn complaint_wins_a_tie_and_more_cues_score_higher() {
        assert_eq!(classify("the parcel was damaged").0, Intent::Complaint);
        let (_, one) = classify("do you ship abroad");
        let (_, two) = classify("do you ship abroad, which courier delivers?");
        assert!(two > one);
    }
}
