//! The files crier serves itself: the browser client and its two pages,
//! compiled into the binary so a deployment is still one file.

/// A static file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/crier.js`: the browser client (clients/js/crier.js).
    CrierJs,
    /// `/demo`: the live donation ticker (web/demo.html).
    Demo,
    /// `/dashboard`: live charts of crier's own figures (web/dashboard.html).
    Dashboard,
}

impl Page {
    /// The page served at `path`, if any.
    pub fn at(path: &str) -> Option<Page> {
        match path {
            "/crier.js" => Some(Page::CrierJs),
            "/demo" | "/demo/" => Some(Page::Demo),
            "/dashboard" | "/dashboard/" => Some(Page::Dashboard),
            _ => None,
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Page::CrierJs => "application/javascript; charset=utf-8",
            Page::Demo | Page::Dashboard => "text/html; charset=utf-8",
        }
    }

    /// Its bytes.
    pub fn body(self) -> &'static [u8] {
        match self {
            Page::CrierJs => include_bytes!("../clients/js/crier.js"),
            Page::Demo => include_bytes!("../web/demo.html"),
            Page::Dashboard => include_bytes!("../web/dashboard.html"),
        }
    }
}
