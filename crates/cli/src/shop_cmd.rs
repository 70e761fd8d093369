//! `switchboard kb` and `switchboard catalog`: a shop's own knowledge and products, from
//! its files. Importing a file again replaces what it brought; a catalogue import is an
//! upsert by SKU that says what it added, changed and removed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use switchboard_runtime::Config;
use switchboard_store::{DocsToRemove, ProductInput, Store};
use uuid::Uuid;

#[derive(Subcommand)]
pub enum KbAction {
    /// Import Markdown, HTML and plain-text files, or folders of them: each file is split by
    /// its headings into titled documents, replacing those an earlier import of it made.
    Import {
        #[arg(long)]
        tenant: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// The tenant's documents: id, title, source file and length.
    List {
        #[arg(long)]
        tenant: String,
    },
    Show {
        #[arg(long)]
        tenant: String,
        id: Uuid,
    },
    /// Remove one document, or with --source every document imported from that file.
    Remove {
        #[arg(long)]
        tenant: String,
        #[arg(required_unless_present = "source", conflicts_with = "source")]
        id: Option<Uuid>,
        #[arg(long)]
        source: Option<String>,
    },
    /// What retrieval finds for a question, with its scores: why an answer was or was not
    /// found.
    Search {
        #[arg(long)]
        tenant: String,
        question: String,
        #[arg(long, default_value_t = 5)]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub enum CatalogAction {
    /// Upsert products by SKU from a CSV (header row) or JSON file: sku, name, price, and
    /// optionally description, currency, stock and any attribute columns (colour, size).
    /// Products the file does not list are removed, unless --keep-missing.
    Import {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
        #[arg(long)]
        keep_missing: bool,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
pub enum LeadsAction {
    /// Print the tenant's leads as CSV (customer, channel, conversation, name, email,
    /// phone, company, interest, when last changed), newest first.
    Export {
        #[arg(long)]
        tenant: String,
    },
}

const ACTOR: &str = "cli";

pub(crate) async fn tenant(store: &Store, slug: &str) -> anyhow::Result<Uuid> {
    store
        .tenant_id(slug)
        .await
        .with_context(|| format!("tenant {slug:?}"))
}

pub async fn kb(config: Config, action: KbAction) -> anyhow::Result<()> {
    let store = crate::store(&config).await?;
    let out = match action {
        KbAction::Import { tenant: t, paths } => {
            let tenant_id = tenant(&store, &t).await?;
            let mut files = Vec::new();
            for p in &paths {
                collect(p, p, &mut files)?;
            }
            // Every file is read and parsed before anything is written, so a bad file
            // leaves the knowledge base as it was.
            let mut parsed = Vec::new();
            for (source, path) in files {
                let content = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let sections = switchboard_import::sections(&source, &content)
                    .with_context(|| path.display().to_string())?;
                let sections: Vec<(String, String)> =
                    sections.into_iter().map(|s| (s.title, s.body)).collect();
                parsed.push((source, sections));
            }
            let mut imported = Vec::new();
            for (source, sections) in parsed {
                let (removed, added) = store
                    .replace_documents(tenant_id, &source, &sections, ACTOR)
                    .await?;
                imported.push(json!({"source": source, "documents": added, "replaced": removed}));
            }
            json!({ "imported": imported })
        }
        KbAction::List { tenant: t } => {
            serde_json::to_value(store.documents(tenant(&store, &t).await?).await?)?
        }
        KbAction::Show { tenant: t, id } => {
            serde_json::to_value(store.document(tenant(&store, &t).await?, id).await?)?
        }
        KbAction::Remove {
            tenant: t,
            id,
            source,
        } => {
            let which = match (&id, &source) {
                (Some(id), _) => DocsToRemove::Id(*id),
                (None, Some(s)) => DocsToRemove::Source(s),
                (None, None) => anyhow::bail!("give a document id or --source"),
            };
            let n = store
                .remove_documents(tenant(&store, &t).await?, which, ACTOR)
                .await?;
            json!({ "removed": n })
        }
        KbAction::Search {
            tenant: t,
            question,
            limit,
        } => {
            let found = store
                .search_knowledge(tenant(&store, &t).await?, &question, limit)
                .await?;
            json!(
                found
                    .iter()
                    .map(|s| json!({"reference": s.reference, "title": s.title,
                                    "coverage": round(s.coverage), "rank": round(s.rank)}))
                    .collect::<Vec<_>>()
            )
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Whether a CSV file's header names both `question` and `answer` (read as the importer
/// reads it, a spreadsheet's byte-order mark included).
fn is_faq(path: &Path) -> bool {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return false;
    };
    let Ok(header) = reader.headers() else {
        return false;
    };
    ["question", "answer"]
        .iter()
        .all(|c| header.iter().any(|h| h.trim().eq_ignore_ascii_case(c)))
}

/// The importable files under `path`, each with its source name: its path relative to the
/// folder given, or its file name when a file was given. A folder's other files are
/// skipped; a file given by name must be of a kind the import reads.
fn collect(root: &Path, path: &Path, out: &mut Vec<(String, PathBuf)>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            let ext = entry
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            let readable = match ext.as_deref() {
                Some("md" | "markdown" | "html" | "htm" | "txt" | "text") => true,
                // In a folder, a CSV is taken only when it is an FAQ (a catalogue may sit
                // beside the handbook); named on the command line, it must be one.
                Some("csv") => is_faq(&entry),
                _ => false,
            };
            if entry.is_dir() || readable {
                collect(root, &entry, out)?;
            }
        }
        return Ok(());
    }
    let source = if root == path {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        path.strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    };
    out.push((source, path.to_owned()));
    Ok(())
}

pub async fn catalog(config: Config, action: CatalogAction) -> anyhow::Result<()> {
    let store = crate::store(&config).await?;
    let out = match action {
        CatalogAction::Import {
            tenant: t,
            file,
            keep_missing,
        } => {
            let tenant_id = tenant(&store, &t).await?;
            let content =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let name = file.to_string_lossy();
            let rows = switchboard_import::parse_catalog(&name, &content)
                .with_context(|| file.display().to_string())?;
            let rows: Vec<ProductInput> = rows.into_iter().map(Into::into).collect();
            serde_json::to_value(
                store
                    .import_products(tenant_id, &rows, !keep_missing, ACTOR)
                    .await?,
            )?
        }
        CatalogAction::List { tenant: t } => {
            serde_json::to_value(store.products(tenant(&store, &t).await?).await?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub async fn leads(config: Config, action: LeadsAction) -> anyhow::Result<()> {
    let store = crate::store(&config).await?;
    match action {
        LeadsAction::Export { tenant: t } => {
            let tenant_id = tenant(&store, &t).await?;
            let csv = store.leads_csv(tenant_id).await?;
            store
                .audit_platform(
                    tenant_id,
                    ACTOR,
                    "leads.export",
                    ("tenant", Some(tenant_id)),
                    json!({}),
                )
                .await?;
            print!("{csv}");
        }
    }
    Ok(())
}
