//! Product attributes a customer asks for ("the mug in blue", "in size L"), compared with
//! what the catalogue says of the product, so an answer about a product the shop does not
//! have in that colour or size says so instead of leaving it out.

use std::collections::BTreeMap;

/// A kind of attribute: the names a catalogue column may have, and the words a customer
/// may ask with (several languages), each mapped to one canonical value.
struct Kind {
    name: &'static str,
    columns: &'static [&'static str],
    values: &'static [(&'static str, &'static str)],
}

const KINDS: &[Kind] = &[
    Kind {
        name: "colour",
        columns: &["colour", "color", "farbe", "couleur", "colore"],
        values: &[
            ("red", "red"),
            ("rot", "red"),
            ("rouge", "red"),
            ("blue", "blue"),
            ("blau", "blue"),
            ("bleu", "blue"),
            ("green", "green"),
            ("grün", "green"),
            ("gruen", "green"),
            ("vert", "green"),
            ("yellow", "yellow"),
            ("gelb", "yellow"),
            ("jaune", "yellow"),
            ("black", "black"),
            ("schwarz", "black"),
            ("noir", "black"),
            ("white", "white"),
            ("weiß", "white"),
            ("weiss", "white"),
            ("blanc", "white"),
            ("grey", "grey"),
            ("gray", "grey"),
            ("grau", "grey"),
            ("gris", "grey"),
            ("brown", "brown"),
            ("braun", "brown"),
            ("pink", "pink"),
            ("rosa", "pink"),
            ("purple", "purple"),
            ("lila", "purple"),
            ("violett", "purple"),
            ("orange", "orange"),
            ("beige", "beige"),
            ("navy", "navy"),
            ("silver", "silver"),
            ("silber", "silver"),
            ("gold", "gold"),
            ("brass", "brass"),
            ("messing", "brass"),
        ],
    },
    Kind {
        name: "size",
        columns: &["size", "größe", "groesse", "taille"],
        values: &[
            ("xs", "xs"),
            ("s", "s"),
            ("m", "m"),
            ("l", "l"),
            ("xl", "xl"),
            ("xxl", "xxl"),
            ("small", "s"),
            ("medium", "m"),
            ("large", "l"),
            ("klein", "s"),
            ("mittel", "m"),
            ("groß", "l"),
            ("gross", "l"),
        ],
    },
];

fn canonical<'a>(kind: &'a Kind, word: &str) -> Option<&'a str> {
    kind.values
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, c)| *c)
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A size word asks for a size after "size", "in" or their kin ("in large", "Größe L"),
/// or when it is a size code itself (XL); "a small question" asks for none.
fn cued_size(asked: &[String], i: usize, word: &str) -> bool {
    const CUES: &[&str] = &[
        "size", "sizes", "in", "größe", "groesse", "gr", "taille", "en",
    ];
    word.starts_with('x')
        || i.checked_sub(1)
            .is_some_and(|p| CUES.contains(&asked[p].as_str()))
}

/// The words of a customer's question that may name an attribute: a single letter is a
/// size in a catalogue ("S, M, L") but in a question mostly the end of "I'm" or "it's".
fn asked(question: &str) -> Vec<String> {
    words(question)
        .into_iter()
        .filter(|w| w.chars().count() > 1)
        .collect()
}

/// What the customer asked for that the catalogue does not confirm: for each, the field
/// (`colour blue`) and why, in words an operator reads. A product without the attribute's
/// column is judged by the values its `description` names ("in white or charcoal").
pub fn unconfirmed(
    question: &str,
    attributes: &BTreeMap<String, String>,
    description: &str,
) -> Vec<(String, String)> {
    let asked = asked(question);
    let mut out = Vec::new();
    for kind in KINDS {
        let wanted: Vec<(&str, &str)> = asked
            .iter()
            .enumerate()
            .filter(|(i, w)| kind.name != "size" || cued_size(&asked, *i, w))
            .filter_map(|(_, w)| canonical(kind, w).map(|c| (w.as_str(), c)))
            .collect();
        let Some((word, want)) = wanted.first().copied() else {
            continue;
        };
        let named: Vec<String> = words(description)
            .into_iter()
            .filter(|w| w.chars().count() > 1 && canonical(kind, w).is_some())
            .collect();
        let described = (!named.is_empty()).then(|| named.join(", "));
        let column = attributes
            .iter()
            .find(|(k, _)| kind.columns.contains(&k.to_lowercase().as_str()))
            .map(|(_, v)| v.clone())
            .or(described);
        match column {
            Some(value) => {
                let has: Vec<&str> = words(&value)
                    .iter()
                    .filter_map(|w| canonical(kind, w))
                    .collect();
                let exact = value.trim().eq_ignore_ascii_case(want);
                if !exact && !has.contains(&want) {
                    out.push((
                        format!("{} {word}", kind.name),
                        format!(
                            "the customer asks for {word}; the catalogue lists {} {value}",
                            kind.name
                        ),
                    ));
                }
            }
            None => out.push((
                format!("{} {word}", kind.name),
                format!(
                    "the customer asks for {word}; the catalogue gives no {} for it",
                    kind.name
                ),
            )),
        }
    }
    out
}

/// The attribute columns of the kinds the customer asked about, to state in the answer.
pub fn asked_columns<'a>(
    question: &str,
    attributes: &'a BTreeMap<String, String>,
) -> Vec<(&'a String, &'a String)> {
    let asked = asked(question);
    KINDS
        .iter()
        .filter(|kind| asked.iter().any(|w| canonical(kind, w).is_some()))
        .filter_map(|kind| {
            attributes
                .iter()
                .find(|(k, _)| kind.columns.contains(&k.to_lowercase().as_str()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_colour_the_catalogue_does_not_list_is_unconfirmed() {
        let mug = attrs(&[("colour", "white")]);
        let u = unconfirmed("Do you have the mug in blue?", &mug, "");
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].0, "colour blue");
        assert!(u[0].1.contains("white"), "{u:?}");
        assert!(unconfirmed("Is the white mug in stock?", &mug, "").is_empty());
        assert!(unconfirmed("Haben Sie die Tasse in Weiß?", &mug, "").is_empty());
        assert!(unconfirmed("How much is the mug?", &mug, "").is_empty());
        assert!(unconfirmed("I'm sure it's fine, is the mug in stock?", &mug, "").is_empty());
        let u = unconfirmed("Gibt es die Tasse in blau?", &mug, "");
        assert_eq!(u[0].0, "colour blau");
    }

    #[test]
    fn a_product_without_the_attribute_cannot_confirm_it() {
        let u = unconfirmed("Is the lamp available in size XL?", &attrs(&[]), "A lamp.");
        assert_eq!(u[0].0, "size xl");
        assert!(u[0].1.contains("no size"));
        let shirt = attrs(&[("Size", "S, M, L")]);
        assert!(unconfirmed("Do you have it in large?", &shirt, "").is_empty());
        assert!(
            unconfirmed("I have a small question, how much is it?", &shirt, "").is_empty(),
            "not a size"
        );
        assert_eq!(asked_columns("in large?", &shirt).len(), 1);
    }

    #[test]
    fn without_the_column_the_description_names_the_values() {
        let described = "A stoneware mug, in white or charcoal.";
        let u = unconfirmed("Do you have the mug in blue?", &attrs(&[]), described);
        assert_eq!(u[0].0, "colour blue");
        assert!(u[0].1.contains("white"), "{u:?}");
        assert!(unconfirmed("Is it available in white?", &attrs(&[]), described).is_empty());
    }
}
