//! # june-ai-adapters
//!
//! Gemini, speech-to-text and text-to-speech clients on `reqwest`, implementing the domain's
//! AI ports. Empty until the AI issue lands; it compiles so the workspace layout is complete.
