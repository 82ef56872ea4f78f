//! resock_explain and resock_classify over any int: a non-empty static text, a class in
//! range, and should_reconnect consistent with the class.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resock::error::{Class, classify, explain, should_reconnect};

fuzz_target!(|errnum: i32| {
    assert!(!explain(errnum).to_bytes().is_empty());
    let class = classify(errnum);
    assert!((class as i32) <= Class::Other as i32);
    if should_reconnect(errnum) {
        assert!(matches!(
            class,
            Class::Reset
                | Class::Pipe
                | Class::Timeout
                | Class::Refused
                | Class::Unreachable
                | Class::Other
        ));
    }
});
