//! virtplugd library (being assembled).
