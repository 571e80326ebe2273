//! ESP32-CAM capture protocol and flash-LED logic (host-testable), and a host camera simulator speaking the same HTTP API.
#![deny(missing_docs)]
