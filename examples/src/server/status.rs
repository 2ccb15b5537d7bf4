//! `GET /metrics` and `GET /`: both rendered by hand from the flows' counter snapshots.
//!
//! Rendering by hand (rather than through a `metrics-exporter-prometheus` recorder) keeps the
//! numbers per server state: no process-wide recorder to install, so tests can run many servers
//! in one process and read each one's own counters. Every value is a count or a gauge without
//! customer data.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::ServerState;

/// One sample: name, help text, labels, value, whether it is a counter.
struct Sample {
    name: &'static str,
    help: &'static str,
    labels: String,
    value: u64,
    counter: bool,
}

fn counter(
    name: &'static str,
    help: &'static str,
    labels: impl Into<String>,
    value: u64,
) -> Sample {
    Sample {
        name,
        help,
        labels: labels.into(),
        value,
        counter: true,
    }
}

fn gauge(name: &'static str, help: &'static str, labels: impl Into<String>, value: u64) -> Sample {
    Sample {
        name,
        help,
        labels: labels.into(),
        value,
        counter: false,
    }
}

fn samples(state: &ServerState) -> Vec<Sample> {
    let load = |value: &std::sync::atomic::AtomicU64| value.load(Ordering::Relaxed);
    let mut out = Vec::new();
    for (route, counters) in [
        ("segment", &state.segment_requests),
        ("customerio", &state.customerio_requests),
    ] {
        const HELP: &str = "Webhook requests answered, by route and answer class.";
        for (answer, value) in [
            ("ok", load(&counters.ok)),
            ("retry_later", load(&counters.retry_later)),
            ("refused", load(&counters.refused)),
            ("bad_request", load(&counters.bad_request)),
        ] {
            out.push(counter(
                "webhook_requests_total",
                HELP,
                format!(r#"route="{route}",answer="{answer}""#),
                value,
            ));
        }
    }

    const PIPELINE: &str =
        "Segment messages processed by the Segment to Customer.io pipeline, by result.";
    let pipeline = state.triggers().pipeline().stats();
    for (labels, value) in [
        (r#"result="delivered""#, pipeline.delivered),
        (r#"result="dead_lettered""#, pipeline.dead_lettered),
        (r#"result="deduplicated""#, pipeline.deduplicated),
        (r#"result="loop_dropped""#, pipeline.loop_dropped),
        (r#"result="skipped""#, pipeline.skipped),
        (r#"result="in_flight""#, pipeline.in_flight),
        (r#"result="failed""#, pipeline.failed),
        (r#"result="rejected""#, pipeline.rejected),
        (r#"result="blocked""#, pipeline.blocked),
    ] {
        out.push(counter("segment_messages_total", PIPELINE, labels, value));
    }
    for (flow, result, value) in state.flow_counters.snapshot() {
        out.push(counter(
            "flow_messages_total",
            "Messages POST /segment handled, by the flow they were routed to and result.",
            format!(r#"flow="{flow}",result="{result}""#),
            value,
        ));
    }

    let mut dispatchers = vec![(
        r#"dispatcher="customerio""#,
        state.triggers().dispatcher().stats(),
    )];
    if let Some(handle) = state.flows.segments() {
        dispatchers.push((r#"dispatcher="customerio_segments""#, handle.stats()));
    }
    if let Some(handle) = &state.engagement_dispatcher {
        dispatchers.push((r#"dispatcher="segment""#, handle.stats()));
    }
    for (labels, stats) in dispatchers {
        out.push(counter(
            "dispatcher_delivered_total",
            "Operations the vendor accepted.",
            labels,
            stats.delivered,
        ));
        out.push(counter(
            "dispatcher_dead_lettered_total",
            "Operations given up to the dead-letter sink.",
            labels,
            stats.dead_lettered,
        ));
        out.push(counter(
            "dispatcher_attempts_total",
            "HTTP requests sent, retries included.",
            labels,
            stats.attempts,
        ));
        out.push(gauge(
            "dispatcher_queue_depth",
            "Operations waiting in the dispatcher's queue.",
            labels,
            stats.queue_depth as u64,
        ));
        out.push(gauge(
            "dispatcher_in_flight",
            "Operations being sent.",
            labels,
            stats.in_flight as u64,
        ));
    }

    if let Some(flow) = &state.engagement {
        const HELP: &str =
            "Customer.io reporting webhooks handled by the engagement back-sync, by result.";
        let stats = flow.stats();
        for (labels, value) in [
            (r#"result="delivered""#, stats.delivered),
            (r#"result="duplicate""#, stats.duplicates),
            (r#"result="skipped""#, stats.skipped),
            (r#"result="dead_lettered""#, stats.dead_lettered),
            (r#"result="retry_later""#, stats.retry_later),
            (r#"result="unusable""#, stats.unusable),
        ] {
            out.push(counter("engagement_events_total", HELP, labels, value));
        }
    }
    if let Some(flow) = &state.backfill {
        const HELP: &str = "Customer.io reporting webhooks handled by the backfill, by result.";
        let stats = flow.stats();
        for (labels, value) in [
            (r#"result="delivered""#, stats.delivered),
            (r#"result="duplicate""#, stats.duplicates),
            (r#"result="not_found""#, stats.not_found),
            (r#"result="skipped""#, stats.skipped),
            (r#"result="dead_lettered""#, stats.dead_lettered),
            (r#"result="retry_later""#, stats.retry_later),
            (r#"result="unusable""#, stats.unusable),
        ] {
            out.push(counter("backfill_events_total", HELP, labels, value));
        }
    }
    out.push(gauge(
        "uptime_seconds",
        "Seconds since the server state was built.",
        "",
        state.started.elapsed().as_secs(),
    ));
    if state.churn.is_some() {
        out.push(counter(
            "churn_enrolled_total",
            "People enrolled by the churn scans.",
            "",
            load(&state.churn_enrolled),
        ));
        out.push(counter(
            "churn_failed_total",
            "People the churn scans could not enrol.",
            "",
            load(&state.churn_failed),
        ));
    }
    out
}

/// The Prometheus text exposition (format 0.0.4) of every sample, names prefixed `cio_sync_`.
pub(super) fn prometheus(state: &ServerState) -> String {
    let mut samples = samples(state);
    // The exposition format wants each family's samples together, under one HELP and TYPE.
    samples.sort_by_key(|sample| sample.name);
    let mut text = String::new();
    let mut last = "";
    for sample in samples {
        if sample.name != last {
            let kind = if sample.counter { "counter" } else { "gauge" };
            let _ = writeln!(text, "# HELP cio_sync_{} {}", sample.name, sample.help);
            let _ = writeln!(text, "# TYPE cio_sync_{} {kind}", sample.name);
            last = sample.name;
        }
        if sample.labels.is_empty() {
            let _ = writeln!(text, "cio_sync_{} {}", sample.name, sample.value);
        } else {
            let _ = writeln!(
                text,
                "cio_sync_{}{{{}}} {}",
                sample.name, sample.labels, sample.value
            );
        }
    }
    text
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// The status page: the same numbers as `/metrics` in a table, then the recent failures.
pub(super) fn html(state: &ServerState) -> String {
    let pipeline = state.triggers().pipeline().stats();
    let dispatcher = state.triggers().dispatcher().stats();
    let uptime = state.started.elapsed().as_secs();
    // Average since start; a rate over a window is Prometheus's job (`rate()` on /metrics).
    let per_minute = pipeline.delivered.saturating_mul(60) / uptime.max(1);
    let mut page = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>cio-segment-sync</title>\
         <style>body{font-family:sans-serif;margin:2em}\
         td,th{padding:2px 8px;text-align:left}</style>\
         </head><body>\n<h1>cio-segment-sync webhook server</h1>\n",
    );
    let _ = writeln!(
        page,
        "<p>Up {uptime} s; Segment → Customer.io throughput {per_minute} messages/minute on \
         average.</p>"
    );
    let _ = writeln!(
        page,
        "<p>Segment → Customer.io: {} delivered, {} dead-lettered, {} failed (retryable), \
         {} rejected; queue depth {}, in flight {}.</p>",
        pipeline.delivered,
        dispatcher.dead_lettered,
        pipeline.failed,
        pipeline.rejected,
        dispatcher.queue_depth,
        dispatcher.in_flight
    );
    page.push_str(
        "<h2>Counters</h2>\n<table><tr><th>metric</th><th>labels</th><th>value</th></tr>\n",
    );
    for sample in samples(state) {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            sample.name,
            escape(&sample.labels),
            sample.value
        );
    }
    page.push_str("</table>\n<h2>Recent failures</h2>\n");
    let failures = state.recent_failures();
    if failures.is_empty() {
        page.push_str("<p>None.</p>\n");
    } else {
        page.push_str(
            "<table><tr><th>unix time</th><th>where</th><th>status</th><th>error</th></tr>\n",
        );
        for failure in failures {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                failure.at,
                failure.route,
                failure.status,
                escape(&failure.message)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body></html>\n");
    page
}
