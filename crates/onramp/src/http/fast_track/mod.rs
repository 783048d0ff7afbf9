//! DreamFactory FastTrack (seed 000). So far: the console envelope it answers in. The
//! `POST /fast-track` endpoint itself is issue 4's remaining work.

pub mod envelope;
