//! How `wasabi run` and `wasabi go-exec` tell their user to change what a
//! program was refused: by the flag that grants or raises it.

use wasabi_core::manifest::limit_field;
use wasabi_core::{Advice, Cap, Grant};

/// Advice in terms of this binary's flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlagAdvice;

impl Advice for FlagAdvice {
    fn grant(&self, grant: &Grant<'_>) -> Option<String> {
        Some(match grant {
            Grant::Listen { endpoint } => format!("grant it with --allow-listen={endpoint}"),
            Grant::Connect { endpoint } => format!("grant it with --allow-connect={endpoint}"),
        })
    }

    fn raise(&self, cap: Cap) -> Option<String> {
        // Each limit's flag is its manifest field's name.
        Some(format!("raise it with --{}", limit_field(cap)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_name_the_flag_that_grants_them() {
        let listen = Grant::Listen {
            endpoint: "127.0.0.1:8080",
        };
        assert_eq!(
            FlagAdvice.grant(&listen).unwrap(),
            "grant it with --allow-listen=127.0.0.1:8080"
        );
        let connect = Grant::Connect {
            endpoint: "[::1]:443",
        };
        assert_eq!(
            FlagAdvice.grant(&connect).unwrap(),
            "grant it with --allow-connect=[::1]:443"
        );
        assert_eq!(
            FlagAdvice.raise(Cap::Sockets).unwrap(),
            "raise it with --max-connections"
        );
    }
}
