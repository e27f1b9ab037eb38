//! wasabi-net
