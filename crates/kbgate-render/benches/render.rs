//! Rendering throughput: `prepare` (sync time) and `resolve` (view time) over the pages of the
//! simulator's demo site. Prints pages/s; not a timed test.
//!
//! Run: `cargo bench -p kbgate-render --bench render`

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use confluence_sim::SimConfig;
use kbgate_render::{PageAccess, PageTarget, PrepareContext, prepare, resolve};

/// A viewer who may read every other page of the site.
struct Access {
    pages: HashMap<(String, String), (String, String)>,
    children: HashMap<String, Vec<(String, String)>>,
}

impl Access {
    fn target(&self, space: &str, title: &str) -> Option<PageTarget> {
        let (id, _) = self.pages.get(&(space.to_string(), title.to_string()))?;
        if id.ends_with('0') {
            return None;
        }
        Some(PageTarget {
            url: format!("/s/{space}/p/{id}"),
            title: title.to_string(),
            id: id.clone(),
        })
    }
}

impl PageAccess for Access {
    fn page_link(&self, space_key: &str, title: &str) -> Option<PageTarget> {
        self.target(space_key, title)
    }
    fn page_stored_html(&self, space_key: &str, title: &str) -> Option<String> {
        self.target(space_key, title)?;
        self.pages
            .get(&(space_key.to_string(), title.to_string()))
            .map(|(_, s)| s.clone())
    }
    fn children(&self, page_id: &str) -> Vec<PageTarget> {
        self.children
            .get(page_id)
            .into_iter()
            .flatten()
            .filter_map(|(s, t)| self.target(s, t))
            .collect()
    }
    fn attachment_url(&self, space_key: &str, page_title: &str, file_name: &str) -> Option<String> {
        let t = self.target(space_key, page_title)?;
        Some(format!("/attachments/{}/{file_name}", t.id))
    }
}

fn run(label: &str, min: Duration, pages: usize, mut f: impl FnMut()) {
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < min || rounds == 0 {
        f();
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = rounds as f64 * pages as f64;
    println!(
        "{label:<28} {:>12.0} pages/s  ({:.1} µs/page, {rounds} rounds)",
        n / secs,
        secs * 1e6 / n
    );
}

fn main() {
    let sim = SimConfig::demo().build();
    let spaces: Vec<(u64, String)> = sim.read(|s| {
        s.spaces
            .values()
            .map(|sp| (sp.id, sp.key.clone()))
            .collect()
    });
    let mut bodies = Vec::new();
    let mut parents = Vec::new();
    for (_, key) in &spaces {
        for id in sim.page_ids_in_space(key) {
            if let (Some(page), Some(body)) = (sim.page(id), sim.page_body(id)) {
                parents.push((page.parent_id, key.clone(), page.title.clone()));
                bodies.push((id.to_string(), key.clone(), page.title, body));
            }
        }
    }
    let total_bytes: usize = bodies.iter().map(|b| b.3.len()).sum();
    println!(
        "{} demo pages, {} KiB of storage format (avg {} B)",
        bodies.len(),
        total_bytes / 1024,
        total_bytes / bodies.len().max(1)
    );

    let min = Duration::from_secs(3);
    run("prepare", min, bodies.len(), || {
        for (id, key, _, body) in &bodies {
            black_box(prepare(
                black_box(body),
                &PrepareContext {
                    space_key: key,
                    page_id: id,
                    user_names: None,
                },
            ));
        }
    });
    run("prepare + encode", min, bodies.len(), || {
        for (id, key, _, body) in &bodies {
            let p = prepare(
                body,
                &PrepareContext {
                    space_key: key,
                    page_id: id,
                    user_names: None,
                },
            );
            black_box(p.encode());
        }
    });

    let mut access = Access {
        pages: HashMap::new(),
        children: HashMap::new(),
    };
    let mut stored = Vec::new();
    for (id, key, title, body) in &bodies {
        let s = prepare(
            body,
            &PrepareContext {
                space_key: key,
                page_id: id,
                user_names: None,
            },
        )
        .encode();
        access
            .pages
            .insert((key.clone(), title.clone()), (id.clone(), s.clone()));
        stored.push(s);
    }
    for (parent, key, title) in parents {
        if let Some(p) = parent {
            access
                .children
                .entry(p.to_string())
                .or_default()
                .push((key, title));
        }
    }
    let html_bytes: usize = stored.iter().map(String::len).sum();
    println!(
        "stored: {} KiB (avg {} B)",
        html_bytes / 1024,
        html_bytes / stored.len().max(1)
    );
    run("resolve", min, stored.len(), || {
        for s in &stored {
            black_box(resolve(black_box(s), &access));
        }
    });
    let plain: Vec<&String> = stored.iter().filter(|s| !s.contains('\u{E000}')).collect();
    if !plain.is_empty() {
        run("resolve (pages without refs)", min, plain.len(), || {
            for s in &plain {
                black_box(resolve(black_box(s), &access));
            }
        });
    }
}
