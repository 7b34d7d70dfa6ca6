//! Domain policy: who may read what. Pure: no I/O.
