//! The retrieval benchmark: a shop of our own (`shop/`: a handbook in English, a shorter
//! one in German, ten products) and sixty labelled questions (`questions.tsv`) in four
//! sets: plain English, long English, English with typos, and German. For each question
//! it asks the knowledge search for the best three sources and counts a hit when the
//! labelled one is first (hit@1) or among them (hit@3). The baseline, in the same run, is
//! the same search without typo correction (`Store::search_as_written`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use switchboard_store::{NewTenant, ProductInput, Store};
use uuid::Uuid;

struct Question {
    set: String,
    text: String,
    expected: Vec<String>,
}

#[derive(Default, Clone, Copy)]
struct Score {
    n: usize,
    at1: usize,
    at3: usize,
}

impl Score {
    fn add(&mut self, rank: Option<usize>) {
        self.n += 1;
        self.at1 += usize::from(rank == Some(0));
        self.at3 += usize::from(rank.is_some_and(|r| r < 3));
    }
    fn at1(self) -> f64 {
        self.at1 as f64 / self.n.max(1) as f64
    }
    fn at3(self) -> f64 {
        self.at3 as f64 / self.n.max(1) as f64
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let misses = args.iter().any(|a| a == "--misses");
    let base = args
        .iter()
        .position(|a| a == "--database-url")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into());
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = format!("sb_retrieval_{}", Uuid::new_v4().simple());
    let url = format!("{}/{db}", base.trim_end_matches('/'));
    Store::migrate(&url).await?;
    let store = Store::connect_lazy(&url, 4)?;
    let result = run(&store, here, misses).await;
    store.pool().close().await;
    let admin = Store::connect_lazy(&format!("{}/postgres", base.trim_end_matches('/')), 1)?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(admin.pool())
        .await?;
    result
}

async fn run(store: &Store, here: &Path, misses: bool) -> anyhow::Result<()> {
    let tenant = store
        .add_tenant(
            &NewTenant {
                slug: "lamps".into(),
                name: "Lamp Lane".into(),
                language: "en".into(),
                timezone: "Europe/Berlin".into(),
                currency: "EUR".into(),
            },
            "bench",
        )
        .await?
        .id;
    for file in ["handbook.md", "handbuch.md"] {
        let text = std::fs::read_to_string(here.join("shop").join(file))?;
        let sections: Vec<(String, String)> = switchboard_import::sections(file, &text)?
            .into_iter()
            .map(|s| (s.title, s.body))
            .collect();
        store
            .replace_documents(tenant, file, &sections, "bench")
            .await?;
    }
    let csv = std::fs::read(here.join("shop/products.csv"))?;
    let rows: Vec<ProductInput> = switchboard_import::parse_catalog("products.csv", &csv)?
        .into_iter()
        .map(Into::into)
        .collect();
    store.import_products(tenant, &rows, true, "bench").await?;
    // Titles by reference, to compare with the labels.
    let titles: BTreeMap<String, String> = store
        .documents(tenant)
        .await?
        .into_iter()
        .map(|d| (format!("doc:{}", d.id), d.title))
        .collect();

    let questions = questions(&std::fs::read_to_string(here.join("questions.tsv"))?)?;
    let mut scores: BTreeMap<(&str, String), Score> = BTreeMap::new();
    let mut missed = Vec::new();
    for q in &questions {
        for (how, corrected) in [("baseline", false), ("switchboard", true)] {
            let found = if corrected {
                store.search_knowledge(tenant, &q.text, 3).await?
            } else {
                store.search_as_written(tenant, &q.text, 3).await?
            };
            let labels: Vec<String> = found
                .iter()
                .map(|s| {
                    titles
                        .get(&s.reference)
                        .cloned()
                        .unwrap_or(s.reference.clone())
                })
                .collect();
            let rank = labels.iter().position(|l| q.expected.contains(l));
            for set in [q.set.clone(), "all".into()] {
                scores.entry((how, set)).or_default().add(rank);
            }
            if corrected && rank != Some(0) {
                missed.push(format!("  [{}] {:?}: found {:?}", q.set, q.text, labels));
            }
        }
    }

    println!(
        "Retrieval on {} labelled questions (hit@k: the labelled source among the first k)",
        questions.len()
    );
    println!();
    println!("| set | questions | hit@1 | hit@3 | hit@1 without typo correction | ratio |");
    println!("|---|---|---|---|---|---|");
    for set in ["en", "long", "typo", "de", "all"] {
        let s = scores
            .get(&("switchboard", set.into()))
            .copied()
            .unwrap_or_default();
        let b = scores
            .get(&("baseline", set.into()))
            .copied()
            .unwrap_or_default();
        println!(
            "| {set} | {} | {:.2} | {:.2} | {:.2} | {:.2}x |",
            s.n,
            s.at1(),
            s.at3(),
            b.at1(),
            s.at1() / b.at1().max(f64::EPSILON)
        );
    }
    println!();
    println!("{} questions missed at 1", missed.len());
    if misses {
        for m in missed {
            println!("{m}");
        }
    }
    Ok(())
}

fn questions(tsv: &str) -> anyhow::Result<Vec<Question>> {
    tsv.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            let mut cols = l.split('\t');
            let (Some(set), Some(text), Some(expected)) = (cols.next(), cols.next(), cols.next())
            else {
                anyhow::bail!(
                    "questions.tsv line {}: expected set, question, expected",
                    i + 2
                );
            };
            Ok(Question {
                set: set.to_owned(),
                text: text.to_owned(),
                expected: expected.split('|').map(str::to_owned).collect(),
            })
        })
        .collect::<anyhow::Result<_>>()
        .context("reading questions.tsv")
}
