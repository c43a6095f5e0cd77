//! The anonymity scenario on a small network (200 nodes, one trial per design, seconds in a debug build): with
//! 10% spies, the stem must keep the adversary's precision well below what today's publisher push gives it,
//! and every publication must still be fluffed.

use kolokol_sim::anonymity::{AnonConfig, Design, run_cell};

fn small() -> AnonConfig {
    AnonConfig {
        nodes: 200,
        // Smaller publications keep the stems short in virtual time; the model is the same.
        size_max: 20_000_000,
        ..AnonConfig::default()
    }
}

#[test]
fn the_stem_keeps_precision_well_below_the_publisher_push() {
    let config = small();
    let push = run_cell(&config, Design::Push, 0.1, 1).unwrap();
    let stem = run_cell(&config, Design::Stem, 0.1, 1).unwrap();
    println!("{push:?}\n{stem:?}");
    assert!(push.publications > 100 && stem.publications > 100);
    // Today the spies next to a publisher hear it from the publisher first: the estimator is right often.
    assert!(push.first_spy.precision > 0.2, "{push:?}");
    assert!(push.first_spy.recall > 0.3, "{push:?}");
    // The stem cuts both estimators' precision at least in half.
    assert!(
        stem.first_spy.precision < push.first_spy.precision / 2.0,
        "first spy: {} vs {}",
        stem.first_spy.precision,
        push.first_spy.precision
    );
    assert!(
        stem.max_weight.precision < push.max_weight.precision / 2.0,
        "max weight: {} vs {}",
        stem.max_weight.precision,
        push.max_weight.precision
    );
    // Stems are real: at least one relay hop each, spies see some in stem, and (almost) all end in a fluff.
    assert!(stem.mean_hops >= 1.0, "{stem:?}");
    assert!(stem.seen_in_stem > 0.0 && push.seen_in_stem == 0.0);
    assert!(stem.never < 0.05, "{stem:?}");
    assert_eq!(push.never, 0.0);
}

#[test]
fn a_seed_gives_one_exact_run() {
    let config = AnonConfig {
        nodes: 100,
        ..small()
    };
    let a = run_cell(&config, Design::Stem, 0.2, 1).unwrap();
    let b = run_cell(&config, Design::Stem, 0.2, 1).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
