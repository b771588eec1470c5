//! What happened to one image of a fleet run, and the run's totals, as text or JSON lines.

use std::time::Duration;

use relaunch_oci::remote::Counters;
use relaunch_oci::Digest;
use serde_json::{json, Map, Value};

use super::list::Item;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The operation wrote a new image (reported with the operation's verb, e.g. `rebased`).
    Changed,
    /// Already in the wanted state: nothing pushed.
    Unchanged,
    /// The operation declined (e.g. the new launcher does not support the app): nothing
    /// written.
    Refused,
    /// An error (registry, bad image, ...): the image was not published.
    Failed,
}

/// The outcome of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    /// Why it was refused or failed (or a note on a change).
    pub reason: Option<String>,
    /// Digest the reference named before.
    pub old: Option<Digest>,
    /// Digest it names now (= `old` when unchanged).
    pub new: Option<Digest>,
    /// More fields for the JSON line (e.g. the run image rebased onto).
    pub details: Map<String, Value>,
}

impl Outcome {
    pub fn changed(old: Digest, new: Digest) -> Outcome {
        Outcome {
            status: Status::Changed,
            reason: None,
            old: Some(old),
            new: Some(new),
            details: Map::new(),
        }
    }

    pub fn unchanged(digest: Digest) -> Outcome {
        Outcome {
            status: Status::Unchanged,
            reason: None,
            old: Some(digest.clone()),
            new: Some(digest),
            details: Map::new(),
        }
    }

    pub fn refused(old: Option<Digest>, reason: String) -> Outcome {
        Outcome {
            status: Status::Refused,
            reason: Some(reason),
            new: old.clone(),
            old,
            details: Map::new(),
        }
    }

    /// Failed with the reference's digest as read, if it was: the image is untouched.
    pub fn failed(old: Option<Digest>, reason: String) -> Outcome {
        Outcome {
            status: Status::Failed,
            reason: Some(reason),
            new: old.clone(),
            old,
            details: Map::new(),
        }
    }
}

/// Names the statuses in output; `changed` is the operation's verb (`rebased`, `decoupled`).
#[derive(Debug, Clone, Copy)]
pub struct Words {
    pub changed: &'static str,
}

impl Words {
    pub fn of(&self, status: Status) -> &'static str {
        match status {
            Status::Changed => self.changed,
            Status::Unchanged => "unchanged",
            Status::Refused => "refused",
            Status::Failed => "failed",
        }
    }

    /// `{"reference", "position", "status", "old-digest", "new-digest", "reason"}`, then
    /// the outcome's details.
    pub fn json_line(&self, item: &Item, o: &Outcome) -> String {
        let digest = |d: &Option<Digest>| d.as_ref().map(ToString::to_string);
        let mut line = json!({
            "reference": item.reference,
            "position": item.position,
            "status": self.of(o.status),
            "old-digest": digest(&o.old),
            "new-digest": digest(&o.new),
            "reason": o.reason,
        });
        if let Value::Object(fields) = &mut line {
            for (k, v) in &o.details {
                fields.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        line.to_string()
    }

    /// `STATUS REFERENCE [old -> new] [: reason]`.
    pub fn text_line(&self, item: &Item, o: &Outcome) -> String {
        let mut line = format!("{:<9} {}", self.of(o.status), item.reference);
        match (o.status, &o.old, &o.new) {
            (Status::Changed, Some(old), Some(new)) => line += &format!(" {old} -> {new}"),
            (Status::Unchanged, Some(d), _) => line += &format!(" {d}"),
            _ => {}
        }
        if let Some(reason) = &o.reason {
            line += &format!(": {reason}");
        }
        line
    }
}

/// Totals of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub changed: usize,
    pub unchanged: usize,
    pub refused: usize,
    pub failed: usize,
    pub elapsed: Duration,
    /// Registry traffic of the run, when the operation reports it.
    pub traffic: Option<Counters>,
}

impl Summary {
    pub fn count(&mut self, status: Status) {
        *match status {
            Status::Changed => &mut self.changed,
            Status::Unchanged => &mut self.unchanged,
            Status::Refused => &mut self.refused,
            Status::Failed => &mut self.failed,
        } += 1;
    }

    pub fn images(&self) -> usize {
        self.changed + self.unchanged + self.refused + self.failed
    }

    pub fn images_per_second(&self) -> f64 {
        self.images() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// 0: every image is done (changed or unchanged); 1: some failed (a rerun retries
    /// them); 2: none failed but some were refused.
    pub fn exit_code(&self) -> u8 {
        match (self.failed, self.refused) {
            (0, 0) => 0,
            (0, _) => 2,
            _ => 1,
        }
    }

    /// Requests (401 challenges excluded, as they only tell the auth scheme) and blob
    /// bytes both ways, per image.
    fn per_image(&self, c: &Counters) -> (u64, f64, u64, f64) {
        let images = self.images().max(1) as f64;
        let requests = c.total_requests() - c.auth_challenges;
        let bytes = c.bytes_downloaded() + c.bytes_uploaded();
        (
            requests,
            requests as f64 / images,
            bytes,
            bytes as f64 / images,
        )
    }

    pub fn to_json(&self, words: &Words) -> Value {
        let mut summary = json!({
            "images": self.images(),
            words.changed: self.changed,
            "unchanged": self.unchanged,
            "refused": self.refused,
            "failed": self.failed,
            "seconds": self.elapsed.as_secs_f64(),
            "images-per-second": self.images_per_second(),
        });
        if let Some(c) = &self.traffic {
            let (requests, requests_per_image, _, bytes_per_image) = self.per_image(c);
            summary["registry"] = json!({
                "requests": requests,
                "requests-per-image": requests_per_image,
                "token-requests": c.token_requests,
                "retries": c.retries,
                "bytes-down": c.bytes_downloaded(),
                "bytes-up": c.bytes_uploaded(),
                "bytes-per-image": bytes_per_image,
            });
        }
        json!({ "summary": summary })
    }

    pub fn to_text(&self, words: &Words) -> String {
        let traffic = match &self.traffic {
            Some(c) => {
                let (requests, per_image, _, bytes_per_image) = self.per_image(c);
                format!(
                    "; {requests} registry requests ({per_image:.1}/image), {} bytes down, {} up ({bytes_per_image:.0}/image)",
                    c.bytes_downloaded(),
                    c.bytes_uploaded()
                )
            }
            None => String::new(),
        };
        format!(
            "{} images: {} {}, {} unchanged, {} refused, {} failed in {:.2}s ({:.1} images/s){traffic}",
            self.images(),
            self.changed,
            words.changed,
            self.unchanged,
            self.refused,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.images_per_second()
        )
    }
}
