//! `--set KEY=VALUE[,VALUE...]`: node config keys a run or a sweep changes.
//!
//! A simulated node's config is built as a TOML table (the keys the
//! simulator owns: name, region, listen address, peers, credentials), the
//! settings are laid over it by their dotted key, and the table is read as
//! the node's [`Config`] with its usual serde rules: an unknown key is an
//! error that lists the known ones, a value of the wrong type names the key,
//! and [`Config::validate`] checks the ranges. Any key of `deploy/rescind.toml`
//! can be set except those the simulator owns ([`OWNED`]).

use std::fmt;

use rescind_node::Config;

/// Keys the simulator sets for each node; `--set` refuses them.
pub const OWNED: &[&str] = &[
    "node_name",
    "region",
    "data_dir",
    "listen",
    "http_listen",
    "admin_token",
    "admin_token_file",
    "check_token",
    "credentials_file",
    "cluster_key",
    "cluster_key_file",
    "cluster_id",
    "peers",
    "advertise_addr",
    "insecure_peers",
    "tls",
];

/// Most configurations one sweep runs (the product of every `--set`'s values).
pub const MAX_CONFIGURATIONS: usize = 64;

/// Most values one `--set` lists.
pub const MAX_VALUES: usize = 16;

/// A `--set` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--set {spec}: {message}")]
pub struct SettingError {
    /// The flag's argument as given.
    pub spec: String,
    /// What is wrong with it.
    pub message: String,
}

/// One `--set KEY=V1,V2,...`: a dotted node config key and the values to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Dotted key, e.g. `gossip.interval`.
    pub key: String,
    /// Values as written (`200ms`, `8`, `true`).
    pub values: Vec<String>,
}

impl Setting {
    /// Parse `KEY=V1,V2,...`. The key's syntax and ownership are checked
    /// here; whether it exists and takes the values is checked by
    /// [`Overrides::config`] (and [`crate::run::check_overrides`]).
    pub fn parse(spec: &str) -> Result<Self, SettingError> {
        let err = |message: String| SettingError {
            spec: spec.to_owned(),
            message,
        };
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| err("expected KEY=VALUE[,VALUE...], e.g. gossip.interval=200ms,1s".into()))?;
        let key = key.trim();
        let parts: Vec<&str> = key.split('.').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(err(format!(
                "`{key}` is not a config key (dotted names of letters, digits and _, e.g. gossip.push_fanout)"
            )));
        }
        if OWNED.contains(&parts[0]) {
            return Err(err(format!(
                "`{}` is set by the simulator for each node; it owns {}",
                parts[0],
                OWNED.join(", ")
            )));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
        if values.iter().any(String::is_empty) {
            return Err(err("an empty value (values are separated by commas)".into()));
        }
        if values.len() > MAX_VALUES {
            return Err(err(format!("{} values; at most {MAX_VALUES}", values.len())));
        }
        Ok(Self {
            key: key.to_owned(),
            values,
        })
    }
}

/// One configuration of a sweep: a value for each set key, in flag order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// (dotted key, value as written).
    pub pairs: Vec<(String, String)>,
}

impl fmt::Display for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pairs.is_empty() {
            return f.write_str("defaults");
        }
        let mut first = true;
        for (k, v) in &self.pairs {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// Every combination of the settings' values, the first setting varying
/// slowest. No setting: one configuration, the defaults.
pub fn grid(settings: &[Setting]) -> Result<Vec<Overrides>, SettingError> {
    for (i, s) in settings.iter().enumerate() {
        if settings[..i].iter().any(|o| o.key == s.key) {
            return Err(SettingError {
                spec: s.key.clone(),
                message: "set twice; list every value in one --set".into(),
            });
        }
    }
    let count = settings
        .iter()
        .try_fold(1usize, |n, s| n.checked_mul(s.values.len()))
        .filter(|&n| n <= MAX_CONFIGURATIONS);
    if count.is_none() {
        return Err(SettingError {
            spec: settings
                .iter()
                .map(|s| s.key.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            message: format!("more than {MAX_CONFIGURATIONS} configurations"),
        });
    }
    let mut out = vec![Overrides::default()];
    for s in settings {
        out = out
            .into_iter()
            .flat_map(|o| {
                s.values.iter().map(move |v| {
                    let mut o = o.clone();
                    o.pairs.push((s.key.clone(), v.clone()));
                    o
                })
            })
            .collect();
    }
    Ok(out)
}

/// A value as TOML: a number, boolean, quoted string, array or inline
/// table as written, anything else (`200ms`, `0.0.0.0:1`) as a string.
fn value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

impl Overrides {
    /// The flags that give this configuration to `rescind-sim run`, each
    /// with a leading space (empty for the defaults).
    pub fn flags(&self) -> String {
        self.pairs
            .iter()
            .map(|(k, v)| format!(" --set {k}={v}"))
            .collect()
    }

    /// Lay these settings over `base` and read it as a node config.
    pub fn config(&self, mut base: toml::Table) -> Result<Config, SettingError> {
        for (key, text) in &self.pairs {
            let err = |message: String| SettingError {
                spec: format!("{key}={text}"),
                message,
            };
            let mut table = &mut base;
            let mut parts: Vec<&str> = key.split('.').collect();
            let last = parts.pop().unwrap_or_default();
            for part in parts {
                let entry = table
                    .entry(part)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                table = entry
                    .as_table_mut()
                    .ok_or_else(|| err(format!("`{part}` is not a section")))?;
            }
            table.insert(last.to_owned(), value(text));
        }
        let config: Config = toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| SettingError {
                spec: self.to_string(),
                message: e.message().trim().to_owned(),
            })?;
        config.validate().map_err(|e| SettingError {
            spec: self.to_string(),
            message: e.to_string(),
        })?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> toml::Table {
        toml::from_str("region = \"eu\"\nlisten = \"127.0.0.1:1\"\n[gossip]\ninterval = \"200ms\"\n").unwrap()
    }

    fn set(specs: &[&str]) -> Result<Vec<Overrides>, SettingError> {
        let settings: Vec<Setting> = specs
            .iter()
            .map(|s| Setting::parse(s))
            .collect::<Result<_, _>>()?;
        grid(&settings)
    }

    #[test]
    fn a_grid_is_every_combination_and_each_reaches_the_config() {
        let g = set(&["gossip.interval=200ms,1s", "gossip.push_fanout=2,8"]).unwrap();
        let labels: Vec<String> = g.iter().map(ToString::to_string).collect();
        assert_eq!(
            labels,
            [
                "gossip.interval=200ms gossip.push_fanout=2",
                "gossip.interval=200ms gossip.push_fanout=8",
                "gossip.interval=1s gossip.push_fanout=2",
                "gossip.interval=1s gossip.push_fanout=8",
            ]
        );
        let c = g[2].config(base()).unwrap();
        assert_eq!(c.gossip.interval, std::time::Duration::from_secs(1));
        assert_eq!(c.gossip.push_fanout, 2);
        assert_eq!(c.region, "eu");
        let c = set(&["metrics=false"]).unwrap()[0].config(base()).unwrap();
        assert!(!c.metrics);
        assert_eq!(grid(&[]).unwrap(), vec![Overrides::default()]);
        assert_eq!(
            g[1].flags(),
            " --set gossip.interval=200ms --set gossip.push_fanout=8"
        );
        assert_eq!(Overrides::default().flags(), "");
    }

    #[test]
    fn an_unknown_key_names_the_known_ones() {
        let e = set(&["gossip.intervl=1s"]).unwrap()[0]
            .config(base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("intervl") && e.contains("push_fanout"), "{e}");
        let e = set(&["colour=1"]).unwrap()[0]
            .config(base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour") && e.contains("checkpoint_ops"), "{e}");
    }

    #[test]
    fn bad_values_and_specs_name_the_flag_and_the_key() {
        let e = set(&["gossip.push_fanout=0"]).unwrap()[0]
            .config(base())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--set gossip.push_fanout=0") && e.contains("1..=64"),
            "{e}"
        );
        let e = set(&["gossip.push_fanout=lots"]).unwrap()[0]
            .config(base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("push_fanout"), "{e}");
        let e = set(&["gossip.interval.x=1"]).unwrap()[0]
            .config(base())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a section"), "{e}");
        for (bad, says) in [
            ("gossip.interval", "KEY=VALUE"),
            ("=1", "not a config key"),
            ("a..b=1", "not a config key"),
            ("listen=0.0.0.0:1", "set by the simulator"),
            ("tls.cert=x", "set by the simulator"),
            ("gossip.interval=1s,,2s", "empty value"),
        ] {
            let e = Setting::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says) && e.starts_with("--set "), "{bad}: {e}");
        }
        let e = set(&["gossip.max_ops=1,2", "gossip.max_ops=3"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("set twice"), "{e}");
        let many: Vec<String> = (1..=9).map(|i| i.to_string()).collect();
        let spec = format!("gossip.max_ops={}", many.join(","));
        let e = set(&[&spec, &spec.replace("max_ops", "push_fanout")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 64 configurations"), "{e}");
    }
}
