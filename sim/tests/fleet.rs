//! `fleet-40-regions`: its latency matrix is the one `sim/fleet/derive.py`
//! states (great-circle distances between the cities of
//! `sim/fleet/cities.csv`, route factor 1.5, fibre at 2/3 c). (A run of the
//! whole fleet is not in the tests yet: one seed took more than 12 minutes
//! in release mode.)
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rescind_sim::Scenario;

fn scenario() -> Scenario {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    Scenario::load(&dir.join("scenarios/fleet-40-regions.toml")).unwrap()
}

/// region → (latitude, longitude), from the checked-in list.
fn cities() -> BTreeMap<String, (f64, f64)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(dir.join("fleet/cities.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 4, "{line}");
            (f[0].to_owned(), (f[2].parse().unwrap(), f[3].parse().unwrap()))
        })
        .collect()
}

/// The derivation's rule, restated.
fn one_way_ms((la1, lo1): (f64, f64), (la2, lo2): (f64, f64)) -> u64 {
    let (la1, lo1, la2, lo2) = (
        la1.to_radians(),
        lo1.to_radians(),
        la2.to_radians(),
        lo2.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    let km = 2.0 * 6371.0 * h.sqrt().asin();
    let fibre_km_per_ms = 299_792.458 * 2.0 / 3.0 / 1000.0;
    ((km * 1.5 / fibre_km_per_ms).round() as u64).max(1)
}

#[test]
fn the_latency_matrix_is_the_great_circle_derivation() {
    let s = scenario();
    let cities = cities();
    assert_eq!(s.regions.len(), 40);
    assert_eq!(s.nodes().len(), 200);
    for r in &s.regions {
        assert!(cities.contains_key(&r.name), "region {} has no city", r.name);
    }
    assert_eq!(s.network.links.len(), 40 * 39 / 2);
    for l in &s.network.links {
        let [a, b] = &l.between;
        let want = one_way_ms(cities[a], cities[b]);
        assert_eq!(l.latency, Duration::from_millis(want), "{a}-{b}");
    }
    // Spot checks against the map: London-Newark ~5,600 km, Sydney-London ~17,000 km.
    let link = |a: &str, b: &str| {
        s.network
            .links
            .iter()
            .find(|l| l.between == [a.to_owned(), b.to_owned()] || l.between == [b.to_owned(), a.to_owned()])
            .unwrap()
            .latency
    };
    assert_eq!(link("ewr", "lhr"), Duration::from_millis(42));
    assert_eq!(link("lhr", "syd"), Duration::from_millis(128));
}
