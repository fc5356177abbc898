//! The router's classifier, used when no rule matches (`router.classifier`):
//! - `centroid`: nearest centroid over embeddings of labelled examples (a JSONL file of
//!   `{"text","label"}`), embedded once — on first use or while the server starts — with
//!   the knowledge base's embedder; the query vector is the one retrieval uses, so a
//!   classification costs a few hundred dot products. Measured with `eval routing`.
//! - `knn`: the k most similar examples vote, weighted by closeness (`domain::knn`; k
//!   chosen by leave-one-out accuracy on the examples when they are embedded) — a few
//!   thousand dot products; better than centroids where labels are not one tight cluster.
//! - `zero_shot`: one label call on the commodity tier (the seed's pattern): the labels
//!   from the examples and `router.label_routes`, answered as `{"label"}`.
//!
//! Each label routes as `router.label_routes` says (default `commodity`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::config::{ClassifierKind, RouterConfig};
use crate::domain::centroid::Centroids;
use crate::domain::knn::Knn;
use crate::domain::router::{Classified, Route};
use crate::error::{Error, Result};
use crate::knowledge::embed::Embedder;
use crate::llm::{ChatRequest, Item, ModelRef, Models, Output, price};

/// Labelled examples, loaded at start; embedded and fitted once.
pub struct Classifier {
    config: RouterConfig,
    examples: Vec<(String, String)>,
    fitted: tokio::sync::OnceCell<Arc<Fitted>>,
}

/// The embedded examples as the configured classifier uses them.
#[derive(Debug)]
pub enum Fitted {
    Centroid(Centroids),
    Knn(Knn),
}

impl Fitted {
    /// The label and its similarity.
    pub fn nearest(&self, v: &[f32]) -> Option<(&str, f32)> {
        match self {
            Fitted::Centroid(c) => c.nearest(v),
            Fitted::Knn(k) => k.nearest(v),
        }
    }

    /// Labels (centroids) or examples (kNN) kept.
    pub fn len(&self) -> usize {
        match self {
            Fitted::Centroid(c) => c.len(),
            Fitted::Knn(k) => k.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What classifying one message came to.
#[derive(Debug, Default)]
pub struct Classification {
    pub classified: Option<Classified>,
    /// Why there is no label, when there is none.
    pub note: Option<String>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

/// Reads `{"text","label"}` lines; a bad line is an error naming it.
pub fn read_examples(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Invalid(format!("router.examples {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| {
            Error::Invalid(format!(
                "router.examples {}:{}: {why}; each line is {{\"text\": \"...\", \"label\": \"...\"}}",
                path.display(),
                i + 1
            ))
        };
        let v: Value = serde_json::from_str(line).map_err(|e| bad(&format!("not JSON ({e})")))?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let (Some(text), Some(label)) = (field("text"), field("label")) else {
            return Err(bad("missing \"text\" or \"label\""));
        };
        out.push((text, label));
    }
    Ok(out)
}

impl Classifier {
    pub fn from_config(config: &RouterConfig) -> Result<Classifier> {
        let examples = match &config.examples {
            Some(p) if config.classifier != ClassifierKind::Off => read_examples(p)?,
            _ => Vec::new(),
        };
        if config.classifier.uses_embeddings() && examples.is_empty() {
            return Err(Error::Invalid(format!(
                "router.classifier = \"{}\" needs labelled examples in router.examples",
                config.classifier
            )));
        }
        Ok(Classifier {
            config: config.clone(),
            examples,
            fitted: Default::default(),
        })
    }

    /// Every label: the examples' and those given a route.
    pub fn labels(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .examples
            .iter()
            .map(|e| e.1.as_str())
            .chain(self.config.label_routes.keys().map(String::as_str))
            .collect();
        set.into_iter().map(str::to_string).collect()
    }

    fn route_of(&self, label: &str) -> Route {
        self.config
            .label_routes
            .get(label)
            .and_then(|r| Route::parse(r))
            .unwrap_or(Route::Commodity)
    }

    /// The fitted classifier, embedding the examples the first time.
    pub async fn fitted(&self, embedder: &Arc<dyn Embedder>) -> Result<Arc<Fitted>> {
        self.fitted
            .get_or_try_init(|| async {
                let (emb, examples) = (embedder.clone(), self.examples.clone());
                let knn = self.config.classifier == ClassifierKind::Knn;
                let started = std::time::Instant::now();
                let c = tokio::task::spawn_blocking(move || -> Result<Fitted> {
                    let mut vectors = Vec::with_capacity(examples.len());
                    for batch in examples.chunks(64) {
                        vectors.extend(emb.embed(&batch.iter().map(|e| e.0.as_str()).collect::<Vec<_>>())?);
                    }
                    let labelled = examples.iter().zip(&vectors).map(|(e, v)| (e.1.as_str(), v.as_slice()));
                    Ok(if knn {
                        Fitted::Knn(Knn::fit(labelled))
                    } else {
                        Fitted::Centroid(Centroids::fit(labelled))
                    })
                })
                .await
                .map_err(|e| Error::internal("classifier embedding task", e))??;
                tracing::info!(
                    examples = self.examples.len(),
                    labels = c.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "routing classifier ready"
                );
                Ok(Arc::new(c))
            })
            .await
            .cloned()
    }

    /// Classifies `text` (its embedding by `embedder` is `vector`; empty without an
    /// embedder); the zero-shot classifier asks the `commodity` chain of `models`.
    pub async fn classify(
        &self,
        embedder: &Arc<dyn Embedder>,
        models: &Models,
        text: &str,
        vector: &[f32],
        commodity: &[ModelRef],
    ) -> Result<Classification> {
        match self.config.classifier {
            kind @ (ClassifierKind::Centroid | ClassifierKind::Knn) => {
                let by = if kind == ClassifierKind::Knn { "knn" } else { "centroid" };
                let fitted = self.fitted(embedder).await?;
                Ok(match fitted.nearest(vector) {
                    Some((label, score)) if score >= self.config.min_similarity => Classification {
                        classified: Some(Classified {
                            by,
                            label: label.to_string(),
                            score,
                            route: self.route_of(label),
                        }),
                        ..Default::default()
                    },
                    Some((label, score)) => Classification {
                        note: Some(format!(
                            "{by}: nearest label {label} ({score:.2}) is below {:.2}",
                            self.config.min_similarity
                        )),
                        ..Default::default()
                    },
                    None => Classification {
                        note: Some(format!("{by}: no vector for this message")),
                        ..Default::default()
                    },
                })
            }
            ClassifierKind::ZeroShot => Ok(self.zero_shot(models, text, commodity).await),
            ClassifierKind::Off => Ok(Classification::default()),
        }
    }

    async fn zero_shot(&self, models: &Models, text: &str, chain: &[ModelRef]) -> Classification {
        if !chain.iter().any(|m| models.is_remote(&m.provider)) {
            return Classification {
                note: Some("zero-shot: the commodity tier has no model".into()),
                ..Default::default()
            };
        }
        let labels = self.labels();
        let (system, schema) = zero_shot_request(&labels);
        let req = ChatRequest {
            model: String::new(),
            system,
            items: vec![Item::User(text.to_string())],
            tools: Vec::new(),
            reply_schema: schema,
            max_tokens: 50,
        };
        let (result, _) = models.chat(chain, &req, crate::domain::now_ms).await;
        let (resp, model) = match result {
            Ok(x) => x,
            Err(e) => {
                return Classification {
                    note: Some(format!("zero-shot failed: {e}")),
                    ..Default::default()
                };
            }
        };
        let mut c = Classification {
            tokens_in: resp.tokens_in,
            tokens_out: resp.tokens_out,
            cost_usd: price::cost(&models.prices, &model.model, resp.tokens_in, resp.tokens_out),
            ..Default::default()
        };
        let label = match &resp.output {
            Output::Reply(raw) => serde_json::from_str::<Value>(raw)
                .ok()
                .and_then(|v| v.get("label").and_then(Value::as_str).map(str::to_string)),
            Output::ToolCalls(_) => None,
        };
        match label {
            Some(l) if labels.contains(&l) => {
                c.classified = Some(Classified {
                    by: "zero_shot",
                    route: self.route_of(&l),
                    label: l,
                    score: 1.0,
                })
            }
            Some(l) if l == "none" => c.note = Some("zero-shot: none of the labels".into()),
            other => c.note = Some(format!("zero-shot: unusable answer {other:?}")),
        }
        c
    }
}

/// The system prompt and answer schema of a zero-shot label call.
pub fn zero_shot_request(labels: &[String]) -> (String, Value) {
    let system = format!(
        "Classify the customer's WhatsApp message into exactly one of these labels, or \"none\" if none fits: {}. Answer with the label structure only.",
        labels.join(", ")
    );
    let mut choices: Vec<&str> = labels.iter().map(String::as_str).collect();
    choices.push("none");
    let schema = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["label"],
        "properties": { "label": { "type": "string", "enum": choices } }
    });
    (system, schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_file_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("fd-examples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ex.jsonl");
        std::fs::write(
            &p,
            "{\"text\":\"where is my parcel\",\"label\":\"order_status\"}\n\n{\"text\":\"hi\"}\n",
        )
        .unwrap();
        let e = read_examples(&p).unwrap_err().to_string();
        assert!(e.contains("ex.jsonl:3: missing \"text\" or \"label\""), "{e}");
        std::fs::write(
            &p,
            "{\"text\":\"where is my parcel\",\"label\":\"order_status\"}\nnot json\n",
        )
        .unwrap();
        assert!(read_examples(&p).unwrap_err().to_string().contains(":2: not JSON"));
        std::fs::write(&p, "{\"text\":\"where is my parcel\",\"label\":\"order_status\"}\n").unwrap();
        assert_eq!(
            read_examples(&p).unwrap(),
            vec![("where is my parcel".to_string(), "order_status".to_string())]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn zero_shot_schema_lists_labels_and_none() {
        let (system, schema) = zero_shot_request(&["hours".into(), "refund".into()]);
        assert!(system.contains("hours, refund"));
        assert_eq!(
            schema["properties"]["label"]["enum"],
            json!(["hours", "refund", "none"])
        );
    }
}
