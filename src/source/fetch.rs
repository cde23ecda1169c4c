//! Remote sources: data files fetched over HTTP(S), conditionally, within limits.
