//! A server's `GET /metrics` read as a Prometheus server reads it: parsed
//! by a conforming OpenMetrics parser (anything malformed fails the scrape),
//! then looked up by family and labels.

use anyhow::{Context, Result, anyhow, bail, ensure};
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue, Sample};

/// One parsed scrape.
pub struct Scrape {
    url: String,
    exposition: MetricsExposition<OpenMetricsType, OpenMetricsValue>,
}

impl Scrape {
    /// `GET {base}/metrics`, which must be OpenMetrics text.
    pub async fn get(http: &reqwest::Client, base: &str) -> Result<Self> {
        let url = format!("{base}/metrics");
        let response = http.get(&url).send().await?.error_for_status()?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        ensure!(
            content_type.starts_with("application/openmetrics-text"),
            "{url}: content type {content_type:?}"
        );
        let text = response.text().await?;
        let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&text)
            .map_err(|e| anyhow!("{url} is not OpenMetrics text: {e:?}\n{text}"))?;
        Ok(Self { url, exposition })
    }

    /// The samples of family `name` (a counter may be named with its
    /// `_total` suffix) whose labels include every pair of `labels`.
    fn samples<'a>(
        &'a self,
        name: &str,
        labels: &'a [(&'a str, &'a str)],
    ) -> Result<impl Iterator<Item = &'a Sample<OpenMetricsValue>> + 'a> {
        let family = self
            .exposition
            .families
            .get(name)
            .or_else(|| {
                let counter = self.exposition.families.get(name.strip_suffix("_total")?)?;
                (counter.family_type == OpenMetricsType::Counter).then_some(counter)
            })
            .with_context(|| format!("no {name} in {}", self.url))?;
        Ok(family.iter_samples().filter(move |sample| {
            sample.get_labelset().is_ok_and(|set| {
                labels
                    .iter()
                    .all(|(k, v)| set.get_label_value(k) == Some(*v))
            })
        }))
    }

    /// The sum of counter or gauge `name` over the label sets that include
    /// `labels` (0 when none has been seen yet).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        let mut sum = 0.0;
        for sample in self.samples(name, labels)? {
            sum += match &sample.value {
                OpenMetricsValue::Counter(counter) => counter.value.as_f64(),
                OpenMetricsValue::Gauge(value) => value.as_f64(),
                other => bail!(
                    "{name} in {} is not a counter or gauge: {other:?}",
                    self.url
                ),
            };
        }
        Ok(sum)
    }

    /// [`Scrape::value`] as a whole count.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> Result<u64> {
        let value = self.value(name, labels)?;
        ensure!(
            value >= 0.0 && value.fract() == 0.0,
            "{name} in {} is not a count: {value}",
            self.url
        );
        Ok(value as u64)
    }

    /// Observations in histogram `name` over the label sets that include
    /// `labels`.
    pub fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> Result<u64> {
        let mut sum = 0;
        for sample in self.samples(name, labels)? {
            match &sample.value {
                OpenMetricsValue::Histogram(histogram) => sum += histogram.count.unwrap_or(0),
                other => bail!("{name} in {} is not a histogram: {other:?}", self.url),
            }
        }
        Ok(sum)
    }
}
