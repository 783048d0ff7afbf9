//! Branding: the product name, logo and accent colour a hosted page or a mail of one instance
//! (or one of its apps) shows. Resolved from the configuration, app over instance over
//! `[branding]` over onramp's own.

use crate::config::{Branding, Config};
use onramp_core::model::{DEFAULT_INSTANCE, PLATFORM_INSTANCE};

/// onramp's own accent colour, when nobody configured one.
pub const DEFAULT_ACCENT: &str = "#0b5fff";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    pub name: String,
    pub logo_url: Option<String>,
    /// `#rrggbb` (validated when the configuration was loaded).
    pub accent: String,
}

impl Brand {
    /// The branding of `instance`, and of `app` (its id and name) when the page or mail is one
    /// app's. The name defaults to the app's name, then the instance's (`default` is onramp's own).
    pub fn resolve(config: &Config, instance: &str, app: Option<(&str, &str)>) -> Self {
        let inst = config.instances.iter().find(|i| i.name == instance);
        let mut branding =
            inst.map(|i| i.branding.over(&config.branding)).unwrap_or_else(|| config.branding.clone());
        if let Some((app_id, _)) = app
            && let Some(a) = inst.and_then(|i| i.apps.iter().find(|a| a.id == app_id))
        {
            branding = a.branding.over(&branding);
        }
        let Branding { product_name, logo_url, accent_color } = branding;
        let fallback_name = match app {
            Some((_, name)) if !name.is_empty() => name.to_owned(),
            // The default and platform instances are onramp's own, not a customer's.
            _ if instance == DEFAULT_INSTANCE || instance == PLATFORM_INSTANCE => "onramp".to_owned(),
            _ => instance.to_owned(),
        };
        Self {
            name: product_name.unwrap_or(fallback_name),
            logo_url,
            accent: accent_color.unwrap_or_else(|| DEFAULT_ACCENT.to_owned()),
        }
    }

    /// The first letter of the name, shown where there is no logo.
    pub fn initial(&self) -> String {
        self.name
            .chars()
            .find(|c| c.is_alphanumeric())
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default()
    }

    /// The colour of text on the accent: white or near-black, whichever contrasts more (WCAG
    /// relative luminance), so a light brand colour still gets readable buttons.
    pub fn ink(&self) -> &'static str {
        let channel = |i: usize| {
            let v = u8::from_str_radix(self.accent.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
            let c = f64::from(v) / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        let luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
        // Contrast with white: 1.05 / (L + 0.05); with #111827 (L ~ 0.0093): (L + 0.05) / 0.0593.
        if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.0593 { "#ffffff" } else { "#111827" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand(accent: &str) -> Brand {
        Brand { name: "Acme".into(), logo_url: None, accent: accent.into() }
    }

    #[test]
    fn ink_contrasts_with_the_accent() {
        assert_eq!(brand("#0b5fff").ink(), "#ffffff");
        assert_eq!(brand("#000000").ink(), "#ffffff");
        assert_eq!(brand("#ffd400").ink(), "#111827");
        assert_eq!(brand("#ffffff").ink(), "#111827");
        assert_eq!(brand("#e11d48").ink(), "#ffffff");
    }

    #[test]
    fn app_over_instance_over_global_over_default() {
        assert_eq!(
            Brand::resolve(&Config::default(), DEFAULT_INSTANCE, None),
            Brand { name: "onramp".into(), logo_url: None, accent: DEFAULT_ACCENT.into() }
        );
        let config = Config::from_toml(
            r##"
            [branding]
            accent_color = "#111111"
            logo_url = "https://cdn.example.com/logo.png"
            [[instances]]
            name = "acme"
            branding = { accent_color = "#222222" }
            [[instances.apps]]
            id = "books"
            name = "Books"
            signup_url = "https://books.example.com/activate"
            branding = { product_name = "Acme Books" }
            "##,
        )
        .unwrap();
        let app = Brand::resolve(&config, "acme", Some(("books", "Books")));
        assert_eq!((app.name.as_str(), app.accent.as_str()), ("Acme Books", "#222222"));
        assert_eq!(app.logo_url.as_deref(), Some("https://cdn.example.com/logo.png"));
        let instance = Brand::resolve(&config, "acme", None);
        assert_eq!((instance.name.as_str(), instance.accent.as_str()), ("acme", "#222222"));
        let other = Brand::resolve(&config, "other", Some(("x", "Other app")));
        assert_eq!((other.name.as_str(), other.accent.as_str()), ("Other app", "#111111"));
    }
}
