//! Publication records from peers, bundles and feeds: `validate_record` never panics, and a record it accepts is
//! exactly the input bytes, with the id that is the SHA-256 of those bytes, and validates the same way again.
#![no_main]

use kolokol_core::record::{RecordId, ValidationContext, validate_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A clock far in the future, so that the creation-time check never hides the rest of validation.
    let ctx = ValidationContext {
        network: "kolokol".to_owned(),
        now_unix: u64::MAX / 2,
    };
    if let Ok(record) = validate_record(data, &ctx) {
        assert_eq!(record.bytes(), data);
        assert_eq!(record.id(), RecordId::of_signed_bytes(data));
        let again =
            validate_record(record.bytes(), &ctx).expect("an accepted record validates again");
        assert_eq!(again, record);
    }
});
