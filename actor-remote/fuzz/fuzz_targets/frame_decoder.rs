//! libFuzzer entry for the frame decoder; the property itself is
//! [`actor_remote_fuzz_driver::frame_decoder`], shared with the stable driver.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    actor_remote_fuzz_driver::frame_decoder(data);
});
