//! A config file is typed by hand: whatever TOML it holds, loading it gives a `Config`
//! or a readable error naming the configuration — never a panic — and a loaded config
//! renders back to TOML (redacted) that loads again.
#![no_main]

use frontdesk::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_toml_str(text) {
        Ok(config) => {
            let _ = config.listen_addr();
            let rendered = config.to_redacted_toml();
            assert!(
                !rendered.starts_with("# cannot render"),
                "a loaded config does not render: {rendered}"
            );
            if let Err(e) = Config::from_toml_str(&rendered) {
                panic!("the rendered config does not load again: {e}\n{rendered}");
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("configuration:") && message.len() > "configuration: ".len(),
                "unclear error: {message:?}"
            );
        }
    }
});
