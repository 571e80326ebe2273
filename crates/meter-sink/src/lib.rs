//! Time-series sinks for meter readings: InfluxDB v1/v2 over HTTP with a durable spool, CSV and JSON-lines files.
#![deny(missing_docs)]
