//! The pre-flight's HTML report: one self-contained page (inline CSS, script and SVG, no
//! external assets) with a sortable table of apps × verdict and a chart of apps per
//! Platform API and per verdict.

use std::collections::BTreeMap;
use std::fmt::Write;

use relaunch_lifecycle::apis::Api;

use super::preflight::Row;
use crate::fleet::Summary;

const VERDICTS: [(&str, &str); 3] = [
    ("starts", "#2e7d32"),
    ("refused", "#c62828"),
    ("failed", "#757575"),
];

/// Text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Horizontal stacked bars, one per label, segments per verdict.
fn bar_chart(title: &str, bars: &[(String, [usize; 3])]) -> String {
    let (label_w, bar_w, row_h) = (90, 320, 22);
    let max = bars
        .iter()
        .map(|(_, c)| c.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let height = 30 + row_h * bars.len().max(1) + 24;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" role="img" aria-label="{}"><text x="0" y="16" font-weight="bold">{}</text>"#,
        label_w + bar_w + 50,
        esc(title),
        esc(title)
    );
    for (i, (label, counts)) in bars.iter().enumerate() {
        let y = 26 + i * row_h;
        let _ = write!(svg, r#"<text x="0" y="{}">{}</text>"#, y + 15, esc(label));
        let mut x = label_w;
        for (count, (verdict, colour)) in counts.iter().zip(VERDICTS) {
            let w = count * bar_w / max;
            if *count > 0 {
                let _ = write!(
                    svg,
                    r#"<rect x="{x}" y="{y}" width="{}" height="{}" fill="{colour}"><title>{} {verdict}</title></rect>"#,
                    w.max(1),
                    row_h - 6,
                    count
                );
            }
            x += w;
        }
        let total: usize = counts.iter().sum();
        let _ = write!(svg, r#"<text x="{}" y="{}">{total}</text>"#, x + 6, y + 15);
    }
    let mut x = 0;
    let legend_y = height - 6;
    for (verdict, colour) in VERDICTS {
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{legend_y}">{verdict}</text>"#,
            legend_y - 9,
            x + 14
        );
        x += 90;
    }
    svg.push_str("</svg>");
    svg
}

fn verdict_index(verdict: &str) -> usize {
    VERDICTS
        .iter()
        .position(|(v, _)| *v == verdict)
        .unwrap_or(2)
}

pub fn render(run_image: &str, rows: &[Row], summary: &Summary) -> String {
    // Platform APIs in version order; apps that could not be checked have none.
    let mut per_api: BTreeMap<Option<Api>, [usize; 3]> = BTreeMap::new();
    let mut per_verdict = [0usize; 3];
    for r in rows {
        let v = verdict_index(r.verdict);
        per_api.entry(r.platform_api.parse().ok()).or_default()[v] += 1;
        per_verdict[v] += 1;
    }
    let mut per_api: Vec<_> = per_api.into_iter().collect();
    per_api.sort_by_key(|(api, _)| (api.is_none(), *api));
    let api_bars: Vec<(String, [usize; 3])> = per_api
        .into_iter()
        .map(|(api, c)| (api.map_or_else(|| "unknown".into(), |a| a.to_string()), c))
        .collect();
    let verdict_bars: Vec<(String, [usize; 3])> = VERDICTS
        .iter()
        .enumerate()
        .map(|(i, (v, _))| {
            let mut c = [0; 3];
            c[i] = per_verdict[i];
            (v.to_string(), c)
        })
        .collect();

    let mut table = String::new();
    for r in rows {
        let _ = write!(
            table,
            r#"<tr class="{v}"><td>{}</td><td>{}</td><td data-key="{}">{}</td><td>{}</td><td>{v}</td><td>{}</td></tr>"#,
            esc(&r.reference),
            esc(&r.platform),
            esc(&sort_key(&r.platform_api)),
            esc(&r.platform_api),
            esc(&r.buildpack_apis),
            esc(&r.detail),
            v = r.verdict,
        );
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>relaunch pre-flight: {run}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}}
h1{{font-size:20px}} .charts{{display:flex;gap:40px;flex-wrap:wrap;margin:16px 0}}
table{{border-collapse:collapse;width:100%}} th,td{{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}
th{{background:#f3f3f3;cursor:pointer;user-select:none}} th:after{{content:" \2195";color:#999}}
tr.starts td:nth-child(5){{color:#2e7d32;font-weight:bold}} tr.refused td:nth-child(5){{color:#c62828;font-weight:bold}}
tr.failed td:nth-child(5){{color:#757575;font-weight:bold}} svg text{{font-size:12px}}
</style></head><body>
<h1>Pre-flight of run image <code>{run}</code></h1>
<p>{images} apps: <b>{starts}</b> start, <b>{refused}</b> would not start, <b>{failed}</b> could not be checked ({secs:.2}s, {rate:.0} apps/s).</p>
<div class="charts">{api_chart}{verdict_chart}</div>
<table id="apps"><thead><tr><th>App</th><th>Platform</th><th>Platform API</th><th>Buildpack APIs</th><th>Verdict</th><th>Launcher / missing APIs</th></tr></thead>
<tbody>{table}</tbody></table>
<script>
document.querySelectorAll('#apps th').forEach(function (th, col) {{
  th.addEventListener('click', function () {{
    var body = document.querySelector('#apps tbody');
    var asc = th.dataset.asc !== 'true';
    th.dataset.asc = asc;
    var key = function (tr) {{ var td = tr.children[col]; return td.dataset.key || td.textContent; }};
    Array.from(body.rows).sort(function (a, b) {{
      return (asc ? 1 : -1) * key(a).localeCompare(key(b));
    }}).forEach(function (tr) {{ body.appendChild(tr); }});
  }});
}});
</script>
</body></html>
"#,
        run = esc(run_image),
        images = summary.images(),
        starts = summary.changed,
        refused = summary.refused,
        failed = summary.failed,
        secs = summary.elapsed.as_secs_f64(),
        rate = summary.images_per_second(),
        api_chart = bar_chart("Apps per Platform API", &api_bars),
        verdict_chart = bar_chart("Apps per verdict", &verdict_bars),
    )
}

/// Sorts API versions numerically in the table (`0.9` before `0.10`).
fn sort_key(api: &str) -> String {
    match api.parse::<Api>() {
        Ok(a) => {
            let s = a.to_string();
            let (major, minor) = s.split_once('.').unwrap_or((&s, "0"));
            format!("{major:0>6}.{minor:0>6}")
        }
        Err(_) => api.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(reference: &str, api: &str, verdict: &'static str) -> Row {
        Row {
            reference: reference.into(),
            platform: "linux/amd64".into(),
            verdict,
            platform_api: api.into(),
            buildpack_apis: "0.10".into(),
            detail: "<detail & more>".into(),
        }
    }

    #[test]
    fn page_is_self_contained_escaped_and_charts_count_apps() {
        let rows = [
            row("r/a:1", "0.10", "starts"),
            row("r/b:1", "0.9", "starts"),
            row("r/c:1", "0.9", "refused"),
            row("r/<x>", "", "failed"),
        ];
        let summary = Summary {
            changed: 2,
            refused: 1,
            failed: 1,
            ..Summary::default()
        };
        let page = render("run:<1>", &rows, &summary);
        assert!(
            !page.contains("src=") && !page.contains("href="),
            "no external assets"
        );
        assert!(page.contains("run:&lt;1&gt;") && page.contains("r/&lt;x&gt;"));
        assert!(page.contains("&lt;detail &amp; more&gt;"));
        assert!(!page.contains("<detail"));
        // Bars in version order: 0.9 (2 apps) before 0.10 (1 app), then the unchecked app.
        let at = |s: &str| page.find(s).unwrap_or_else(|| panic!("{s} missing"));
        assert!(
            at(">0.9</text>") < at(">0.10</text>") && at(">0.10</text>") < at(">unknown</text>")
        );
        assert!(page.contains("<title>1 refused</title>"));
        assert!(sort_key("0.9") < sort_key("0.10"));
        assert!(page.contains(
            "4 apps: <b>2</b> start, <b>1</b> would not start, <b>1</b> could not be checked"
        ));
    }
}
