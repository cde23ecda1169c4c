//! SDMX REST queries: an `[input.query]` (service, dataflow, key, period) -> the URL and the
//! `Accept` header of its request, from the services file shipped with the exporter
//! (`services/sdmx.toml`) and the dataset's `[sdmx.services.NAME]` overrides. The request then
//! goes through the remote-source path like any URL.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::Url;
use serde::Deserialize;
use toml::Spanned;

use crate::source::fetch::{FetchOptions, FetchSettings};

/// The services every dataset knows, as shipped.
pub const BUILT_IN: &str = include_str!("../../services/sdmx.toml");

/// How often a queued asynchronous answer is polled unless the service says otherwise.
pub const DEFAULT_ASYNC_EVERY: Duration = Duration::from_secs(10);

/// One service as the services file or `[sdmx.services.NAME]` writes it. Every key is optional
/// so that an override names only what changes; a new service needs `url`, `api`, `agency`
/// and `formats`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub url: Option<String>,
    /// `2.1` or `3.0`: the shape of the data path.
    pub api: Option<String>,
    pub agency: Option<String>,
    /// Input format -> the Accept media type the service documents for it.
    pub formats: Option<BTreeMap<String, String>>,
    /// Input format -> query parameters it wants as well (`format=SDMX-CSV`).
    pub format_params: Option<BTreeMap<String, String>>,
    pub min_interval: Option<String>,
    pub max_concurrent: Option<u32>,
    pub timeout: Option<String>,
    /// Where a queued request's status (`{id}`) is polled, and its data fetched once ready.
    pub async_status: Option<String>,
    pub async_data: Option<String>,
    pub async_every: Option<String>,
    /// Documentation only.
    pub notes: Option<String>,
}

impl ServiceConfig {
    /// These keys with every one `over` sets taken from `over`.
    fn merged(&self, over: &ServiceConfig) -> ServiceConfig {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.as_ref().or(base.as_ref()).cloned()
        }
        ServiceConfig {
            url: pick(&self.url, &over.url),
            api: pick(&self.api, &over.api),
            agency: pick(&self.agency, &over.agency),
            formats: pick(&self.formats, &over.formats),
            format_params: pick(&self.format_params, &over.format_params),
            min_interval: pick(&self.min_interval, &over.min_interval),
            max_concurrent: pick(&self.max_concurrent, &over.max_concurrent),
            timeout: pick(&self.timeout, &over.timeout),
            async_status: pick(&self.async_status, &over.async_status),
            async_data: pick(&self.async_data, &over.async_data),
            async_every: pick(&self.async_every, &over.async_every),
            notes: pick(&self.notes, &over.notes),
        }
    }
}

/// `[sdmx]` of a dataset config, and the top of the services file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdmxConfig {
    #[serde(default)]
    pub services: BTreeMap<String, Spanned<ServiceConfig>>,
}

/// The SDMX REST path style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `data/{flowRef}/{key}?startPeriod=…`
    V21,
    /// `data/dataflow/{agency}/{flow}/{version}/{key}?c[TIME_PERIOD]=…`
    V30,
}

/// A service checked: what a query against it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub url: String,
    pub api: Api,
    pub agency: String,
    pub formats: BTreeMap<String, String>,
    pub format_params: BTreeMap<String, String>,
    pub min_interval: Duration,
    pub max_concurrent: Option<u32>,
    pub timeout: Option<Duration>,
    pub async_poll: Option<AsyncPoll>,
}

/// Where a queued answer is followed: `{id}` in both URLs is the request's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncPoll {
    pub status: String,
    pub data: String,
    pub every: Duration,
}

/// `[input.query]`: which data of which service an input reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// A service of the services file or of `[sdmx.services]`.
    pub service: Spanned<String>,
    pub dataflow: Spanned<String>,
    /// Dimension codes joined by `.`, alternatives by `+`, an empty position for all.
    pub key: Option<Spanned<String>>,
    /// The dataflow's agency when it is not the service's.
    pub agency: Option<Spanned<String>>,
    /// The dataflow's version (default: the latest).
    pub version: Option<Spanned<String>>,
    pub start_period: Option<Spanned<String>>,
    pub end_period: Option<Spanned<String>>,
    pub last_n_observations: Option<Spanned<u32>>,
    pub updated_after: Option<Spanned<String>>,
    /// Also fetch the dataflow's structure (its DSD, codelists and concepts): the roles of
    /// the components and the display names of their codes, as the input's `structure` gives.
    #[serde(default)]
    pub structure: bool,
}

/// What a query asks: the URL, the Accept header, and the service's manners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub accept: String,
    /// Where the dataflow's structure is read ([`structure_url`]), for a reader that takes
    /// the names of codes from it.
    pub structure_url: String,
    pub service: Service,
}

/// Problems: where (a span of the dataset config; empty for the shipped file) and what.
pub type Problems = Vec<(Range<usize>, String)>;

/// The shipped services with `overrides` applied (a new name adds a service), each checked.
pub fn services(
    overrides: &BTreeMap<String, Spanned<ServiceConfig>>,
) -> Result<BTreeMap<String, Service>, Problems> {
    let built_in: SdmxConfig = toml::from_str(BUILT_IN).map_err(|e| {
        vec![(
            0..0,
            format!("the shipped services file does not read: {e}"),
        )]
    })?;
    let mut merged: BTreeMap<String, (Range<usize>, ServiceConfig)> = built_in
        .services
        .into_iter()
        .map(|(name, s)| (name, (0..0, s.into_inner())))
        .collect();
    for (name, over) in overrides {
        let base = merged.remove(name).map(|(_, s)| s).unwrap_or_default();
        merged.insert(name.clone(), (over.span(), base.merged(over.get_ref())));
    }
    let mut problems = Problems::new();
    let mut out = BTreeMap::new();
    for (name, (span, s)) in merged {
        match service(&name, &s) {
            Ok(s) => {
                out.insert(name, s);
            }
            Err(e) => problems.push((span, e)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// One service's keys checked.
fn service(name: &str, s: &ServiceConfig) -> Result<Service, String> {
    let missing = |key: &str| {
        format!("sdmx service `{name}` has no `{key}`, expected url, api, agency and formats")
    };
    let url = s.url.clone().ok_or_else(|| missing("url"))?;
    if Url::parse(&url).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
        return Err(format!(
            "sdmx service `{name}`: url `{url}` is not an http(s) URL, expected the API's base URL"
        ));
    }
    let api = match s.api.as_deref().ok_or_else(|| missing("api"))? {
        "2.1" => Api::V21,
        "3.0" => Api::V30,
        other => {
            return Err(format!(
                "sdmx service `{name}`: unknown api `{other}`, expected \"2.1\" or \"3.0\""
            ))
        }
    };
    let duration = |key: &str, v: &Option<String>| -> Result<Option<Duration>, String> {
        v.as_deref()
            .map(|v| {
                crate::read::parse_duration(v)
                    .map_err(|e| format!("sdmx service `{name}`: {key}: {e}"))
            })
            .transpose()
    };
    let async_poll = match (&s.async_status, &s.async_data) {
        (Some(status), Some(data)) => Some(AsyncPoll {
            status: status.clone(),
            data: data.clone(),
            every: duration("async_every", &s.async_every)?.unwrap_or(DEFAULT_ASYNC_EVERY),
        }),
        (None, None) => None,
        _ => {
            return Err(format!(
                "sdmx service `{name}` sets only one of async_status and async_data, expected both or neither"
            ))
        }
    };
    let formats = s.formats.clone().ok_or_else(|| missing("formats"))?;
    if let Some((f, v)) = formats
        .iter()
        .find(|(_, v)| HeaderValue::from_str(v).is_err())
    {
        return Err(format!(
            "sdmx service `{name}`: formats.{f} = \"{}\" cannot be sent as a header, expected a media type",
            crate::diagnostic::excerpt(v)
        ));
    }
    Ok(Service {
        name: name.to_string(),
        url: url.trim_end_matches('/').to_string(),
        api,
        agency: s.agency.clone().ok_or_else(|| missing("agency"))?,
        formats,
        format_params: s.format_params.clone().unwrap_or_default(),
        min_interval: duration("min_interval", &s.min_interval)?.unwrap_or(Duration::ZERO),
        max_concurrent: s.max_concurrent,
        timeout: duration("timeout", &s.timeout)?,
        async_poll,
    })
}

/// The request of `q` for an input of `format`, or what is wrong, at the span of the key at
/// fault (`at`: the query table's, when no key is).
pub fn request(
    q: &QueryConfig,
    at: Range<usize>,
    format: &str,
    services: &BTreeMap<String, Service>,
) -> Result<Request, (Range<usize>, String)> {
    let Some(service) = services.get(q.service.get_ref()) else {
        let known: Vec<&str> = services.keys().map(String::as_str).collect();
        return Err((
            q.service.span(),
            format!(
                "unknown sdmx service `{}`, expected one of {} or a [sdmx.services.NAME] table",
                crate::diagnostic::excerpt(q.service.get_ref()),
                known.join(", ")
            ),
        ));
    };
    let Some(accept) = service.formats.get(format) else {
        let served: Vec<&str> = service.formats.keys().map(String::as_str).collect();
        return Err((
            at,
            format!(
                "sdmx service `{}` does not serve format `{format}`, expected one of {}",
                service.name,
                served.join(", ")
            ),
        ));
    };
    check_ids(q)?;
    let url = data_url(q, service, format);
    Ok(Request {
        url,
        accept: accept.clone(),
        structure_url: structure_url(q, service),
        service: service.clone(),
    })
}

impl Request {
    /// The service's manners over fetch settings the dataset's `[fetch]` (`options`) left
    /// unset: its minimum interval, concurrency and timeout; and always its Accept header and
    /// its way of answering large queries later.
    pub fn apply(&self, options: &FetchOptions, settings: &mut FetchSettings) {
        let s = &self.service;
        if options.min_interval.is_none() {
            settings.min_interval = s.min_interval;
        }
        if let (None, Some(n)) = (&options.max_concurrent_per_host, s.max_concurrent) {
            settings.max_concurrent_per_host = n;
        }
        if let (None, Some(t)) = (&options.timeout, s.timeout) {
            settings.timeout = t;
        }
        if let Ok(v) = HeaderValue::from_str(&self.accept) {
            settings.headers.push((ACCEPT, v));
        }
        settings.async_poll.clone_from(&s.async_poll);
    }
}

/// Which characters a query value may hold: none that has a meaning in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chars {
    Id,
    Agency,
    Version,
    Key,
    Period,
}

impl Chars {
    fn allows(self, c: char) -> bool {
        let id = c.is_ascii_alphanumeric() || "_-@$".contains(c);
        id || match self {
            Chars::Id => false,
            Chars::Agency => c == '.',
            Chars::Version => ".+~*".contains(c),
            Chars::Key => ".+*".contains(c),
            Chars::Period => ":.+".contains(c),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Chars::Id => "letters, digits, _ - @ $",
            Chars::Agency => "letters, digits, _ - @ $ .",
            Chars::Version => "a version such as 1.0",
            Chars::Key => "codes joined by . and +",
            Chars::Period => "a period such as 2020, 2020-Q1 or 2024-01-01T00:00:00Z",
        }
    }
}

/// Refuses ids and periods holding characters that have a meaning in the URL.
fn check_ids(q: &QueryConfig) -> Result<(), (Range<usize>, String)> {
    let checks = [
        ("dataflow", Some(&q.dataflow), Chars::Id),
        ("agency", q.agency.as_ref(), Chars::Agency),
        ("version", q.version.as_ref(), Chars::Version),
        ("key", q.key.as_ref(), Chars::Key),
        ("start_period", q.start_period.as_ref(), Chars::Period),
        ("end_period", q.end_period.as_ref(), Chars::Period),
        ("updated_after", q.updated_after.as_ref(), Chars::Period),
    ];
    for (key, v, chars) in checks {
        let Some(v) = v else { continue };
        // An empty key asks for everything; an empty id names nothing.
        let empty = v.get_ref().is_empty() && chars != Chars::Key;
        if empty || !v.get_ref().chars().all(|c| chars.allows(c)) {
            return Err((
                v.span(),
                format!(
                    "{key} = \"{}\" is not usable in a query, expected {}",
                    crate::diagnostic::excerpt(v.get_ref()),
                    chars.expected()
                ),
            ));
        }
    }
    Ok(())
}

/// The data URL of `q` against `service`, in the service's path style.
pub fn data_url(q: &QueryConfig, service: &Service, format: &str) -> String {
    let flow = q.dataflow.get_ref();
    let agency = q.agency.as_ref().map(|a| a.get_ref().as_str());
    let version = q.version.as_ref().map(|v| v.get_ref().as_str());
    let key = q.key.as_ref().map(|k| k.get_ref().as_str());
    let mut params: Vec<String> = service
        .format_params
        .get(format)
        .into_iter()
        .cloned()
        .collect();
    let period = |v: &Option<Spanned<String>>| v.as_ref().map(|v| escape(v.get_ref()));
    let path = match service.api {
        Api::V21 => {
            // The short flowRef is what services document; the long one when it must name
            // another agency or a version.
            let flow_ref = if agency.is_some() || version.is_some() {
                let a = agency.unwrap_or(&service.agency);
                format!("{a},{flow},{}", version.unwrap_or("latest"))
            } else {
                flow.clone()
            };
            params.extend(period(&q.start_period).map(|p| format!("startPeriod={p}")));
            params.extend(period(&q.end_period).map(|p| format!("endPeriod={p}")));
            format!(
                "data/{flow_ref}/{}",
                key.filter(|k| !k.is_empty()).unwrap_or("all")
            )
        }
        Api::V30 => {
            let a = agency.unwrap_or(&service.agency);
            let bounds: Vec<String> = [("ge", &q.start_period), ("le", &q.end_period)]
                .into_iter()
                .filter_map(|(op, v)| period(v).map(|p| format!("{op}:{p}")))
                .collect();
            if !bounds.is_empty() {
                params.push(format!("c[TIME_PERIOD]={}", bounds.join("%2B")));
            }
            // SDMX 3.0 wildcards a whole key with `*`.
            let key = key.filter(|k| !k.is_empty()).unwrap_or("*");
            format!("data/dataflow/{a}/{flow}/{}/{key}", version.unwrap_or("+"))
        }
    };
    params.extend(
        q.last_n_observations
            .as_ref()
            .map(|n| format!("lastNObservations={}", n.get_ref())),
    );
    params.extend(period(&q.updated_after).map(|p| format!("updatedAfter={p}")));
    let mut url = format!("{}/{path}", service.url);
    if !params.is_empty() {
        url.push('?');
        url.push_str(&params.join("&"));
    }
    url
}

/// The URL of the dataflow's structure (its data structure, codelists and concepts), for the
/// readers that take the codes' names from it.
pub fn structure_url(q: &QueryConfig, service: &Service) -> String {
    let a = q
        .agency
        .as_ref()
        .map_or(service.agency.as_str(), |a| a.get_ref());
    let flow = q.dataflow.get_ref();
    let version = q.version.as_ref().map(|v| v.get_ref().as_str());
    match service.api {
        Api::V21 => format!(
            "{}/dataflow/{a}/{flow}/{}?references=all",
            service.url,
            version.unwrap_or("latest")
        ),
        Api::V30 => format!(
            "{}/structure/dataflow/{a}/{flow}/{}?references=all",
            service.url,
            version.unwrap_or("+")
        ),
    }
}

/// A query parameter's value with `+` (a space to form decoders) and `:` kept safe.
fn escape(v: &str) -> String {
    v.replace('+', "%2B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> QueryConfig {
        toml::from_str(text).unwrap()
    }

    fn shipped() -> BTreeMap<String, Service> {
        services(&BTreeMap::new()).expect("the shipped services read")
    }

    #[test]
    fn every_shipped_service_builds_the_url_and_accept_it_documents() {
        let all = shipped();
        // One row per service: query, format, URL, Accept.
        let table = [
            ("service = \"ECB\"\ndataflow = \"EXR\"\nkey = \"M.USD+JPY.EUR.SP00.A\"\nstart_period = \"2020\"", "sdmx-csv",
             "https://data-api.ecb.europa.eu/service/data/EXR/M.USD+JPY.EUR.SP00.A?startPeriod=2020",
             "application/vnd.sdmx.data+csv;version=1.0.0"),
            ("service = \"ESTAT\"\ndataflow = \"une_rt_m\"\nkey = \"M.SA..PC_ACT.T.DE+FR\"\nlast_n_observations = 12", "sdmx-csv",
             "https://ec.europa.eu/eurostat/api/dissemination/sdmx/2.1/data/une_rt_m/M.SA..PC_ACT.T.DE+FR?format=SDMX-CSV&lastNObservations=12",
             "application/vnd.sdmx.data+csv;version=1.0.0"),
            ("service = \"OECD\"\nagency = \"OECD.SDD.NAD\"\ndataflow = \"DSD_NAMAIN1@DF_QNA\"\nversion = \"1.1\"\nkey = \"Q..AUS+AUT\"\nstart_period = \"2020-Q1\"", "sdmx-csv",
             "https://sdmx.oecd.org/public/rest/data/OECD.SDD.NAD,DSD_NAMAIN1@DF_QNA,1.1/Q..AUS+AUT?startPeriod=2020-Q1",
             "application/vnd.sdmx.data+csv; charset=utf-8"),
            ("service = \"IMF\"\ndataflow = \"CPI\"\nkey = \"USA.CPI.CP01.IX.M\"\nstart_period = \"2020-01\"\nend_period = \"2024-12\"", "sdmx-json",
             "https://api.imf.org/external/sdmx/3.0/data/dataflow/IMF.STA/CPI/+/USA.CPI.CP01.IX.M?c[TIME_PERIOD]=ge:2020-01%2Ble:2024-12",
             "application/vnd.sdmx.data+json;version=2.0.0"),
            ("service = \"BIS\"\ndataflow = \"WS_CBPOL\"\nkey = \"M.CH+GB\"\nupdated_after = \"2024-01-01T00:00:00+01:00\"", "sdmx-csv",
             "https://stats.bis.org/api/v1/data/WS_CBPOL/M.CH+GB?updatedAfter=2024-01-01T00:00:00%2B01:00",
             "application/vnd.sdmx.data+csv;version=1.0.0"),
            ("service = \"ILO\"\ndataflow = \"DF_UNE_DEAP_SEX_AGE_RT\"\nkey = \"FRA.A..SEX_T.AGE_YTHADULT_YGE15\"", "sdmx-ml",
             "https://sdmx.ilo.org/rest/data/DF_UNE_DEAP_SEX_AGE_RT/FRA.A..SEX_T.AGE_YTHADULT_YGE15",
             "application/vnd.sdmx.structurespecificdata+xml;version=2.1"),
            ("service = \"UNICEF\"\ndataflow = \"GLOBAL_DATAFLOW\"\nkey = \"AFG.CME_MRY0T4.\"", "sdmx-json",
             "https://sdmx.data.unicef.org/ws/public/sdmxapi/rest/data/GLOBAL_DATAFLOW/AFG.CME_MRY0T4.",
             "application/vnd.sdmx.data+json;version=1.0.0"),
            ("service = \"ABS\"\ndataflow = \"CPI\"\nkey = \"1.10001.10.50.Q\"\nstart_period = \"2022-Q1\"", "sdmx-csv",
             "https://api.data.abs.gov.au/data/CPI/1.10001.10.50.Q?startPeriod=2022-Q1",
             "application/vnd.sdmx.data+csv;version=1.0.0"),
            ("service = \"INSEE\"\ndataflow = \"CHOMAGE-TRIM-NATIONAL\"\nlast_n_observations = 4", "sdmx-ml",
             "https://www.bdm.insee.fr/series/sdmx/data/CHOMAGE-TRIM-NATIONAL/all?lastNObservations=4",
             "application/vnd.sdmx.genericdata+xml;version=2.1"),
            ("service = \"ISTAT\"\ndataflow = \"151_914\"\nkey = \"A.IT.UNEM_R.N\"", "sdmx-csv",
             "https://esploradati.istat.it/SDMXWS/rest/data/151_914/A.IT.UNEM_R.N",
             "application/vnd.sdmx.data+csv;version=1.0.0"),
        ];
        for (text, format, url, accept) in table {
            let q = query(text);
            let r = request(&q, 0..0, format, &all).unwrap();
            assert_eq!((r.url.as_str(), r.accept.as_str()), (url, accept), "{text}");
        }
        assert_eq!(all.len(), table.len(), "one row per shipped service");
    }

    #[test]
    fn the_structure_url_names_the_dataflow_and_all_its_references() {
        let all = shipped();
        let ecb = query("service = \"ECB\"\ndataflow = \"EXR\"");
        assert_eq!(
            structure_url(&ecb, &all["ECB"]),
            "https://data-api.ecb.europa.eu/service/dataflow/ECB/EXR/latest?references=all"
        );
        let imf = query("service = \"IMF\"\ndataflow = \"CPI\"\nversion = \"3.0.1\"");
        assert_eq!(
            structure_url(&imf, &all["IMF"]),
            "https://api.imf.org/external/sdmx/3.0/structure/dataflow/IMF.STA/CPI/3.0.1?references=all"
        );
    }

    #[test]
    fn an_override_moves_a_service_and_a_new_one_is_added() {
        let mut over: BTreeMap<String, Spanned<ServiceConfig>> = BTreeMap::new();
        let moved = ServiceConfig {
            url: Some("http://127.0.0.1:8080/ecb/".into()),
            ..ServiceConfig::default()
        };
        over.insert("ECB".into(), Spanned::new(3..9, moved));
        let half = ServiceConfig {
            url: Some("http://127.0.0.1:8080/x".into()),
            ..ServiceConfig::default()
        };
        over.insert("NEW".into(), Spanned::new(20..30, half));
        let problems = services(&over).unwrap_err();
        assert_eq!(
            problems,
            [(
                20..30,
                "sdmx service `NEW` has no `api`, expected url, api, agency and formats"
                    .to_string()
            )]
        );
        over.remove("NEW");
        let all = services(&over).unwrap();
        let q = query("service = \"ECB\"\ndataflow = \"EXR\"");
        let r = request(&q, 0..0, "sdmx-ml", &all).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:8080/ecb/data/EXR/all");
        assert_eq!(r.accept, "application/vnd.sdmx.genericdata+xml;version=2.1");
        assert_eq!(r.service.min_interval, Duration::from_secs(1), "kept");
    }

    #[test]
    fn a_bad_query_is_refused_at_its_key() {
        let all = shipped();
        let q = query("service = \"ECB\"\ndataflow = \"EXR\"\nkey = \"M.USD/../x\"");
        let (span, message) = request(&q, 0..0, "sdmx-csv", &all).unwrap_err();
        assert_eq!(span, q.key.as_ref().unwrap().span());
        assert!(
            message.starts_with("key = \"M.USD/../x\" is not usable"),
            "{message}"
        );
        let q = query("service = \"INSEE\"\ndataflow = \"X\"");
        let (_, message) = request(&q, 0..0, "sdmx-csv", &all).unwrap_err();
        assert_eq!(
            message,
            "sdmx service `INSEE` does not serve format `sdmx-csv`, expected one of sdmx-ml"
        );
        let q = query("service = \"NOPE\"\ndataflow = \"X\"");
        let (_, message) = request(&q, 0..0, "sdmx-csv", &all).unwrap_err();
        assert!(
            message.starts_with("unknown sdmx service `NOPE`, expected one of ABS, BIS, ECB"),
            "{message}"
        );
    }
}
