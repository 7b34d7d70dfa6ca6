//! The CQL subset the simulator understands.
