//! Drawing report models: [`html`] pages with [`plot`]s (SVG). Pure: models in, text out;
//! used by the coordinator's web side and `fleetctl report --format html`.

pub mod html;
pub mod plot;
