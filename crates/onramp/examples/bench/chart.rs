//! The scale figures as a picture: throughput and p99 latency of each operation against the
//! number of users stored (both axes logarithmic), as an SVG.

use super::scale::Row;
use plotters::prelude::*;

const OPS: [(&str, RGBColor); 4] = [
    ("signup", RGBColor(0x1f, 0x6f, 0xeb)),
    ("activation", RGBColor(0x1a, 0x7f, 0x37)),
    ("login", RGBColor(0xbc, 0x4c, 0x00)),
    ("app schema", RGBColor(0x82, 0x50, 0xdf)),
];

pub fn draw(path: &std::path::Path, db: &str, rows: &[Row]) {
    let root = SVGBackend::new(path, (1100, 460)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let (left, right) = root.split_horizontally(550);
    let users = |r: &Row| r.users as f64;
    let x_min = rows.iter().map(users).fold(f64::MAX, f64::min).max(1.0) / 2.0;
    let x_max = rows.iter().map(users).fold(1.0, f64::max) * 2.0;
    panel(&left, &format!("throughput ({db}), per second"), rows, (x_min, x_max), |r| r.window.rate());
    panel(&right, &format!("p99 latency ({db}), ms"), rows, (x_min, x_max), |r| r.window.p(0.99));
    root.present().unwrap();
}

fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    rows: &[Row],
    (x_min, x_max): (f64, f64),
    value: impl Fn(&Row) -> f64,
) {
    let values: Vec<f64> = rows.iter().map(&value).filter(|v| *v > 0.0).collect();
    // Room below the lowest line for the legend.
    let y_min = values.iter().copied().fold(f64::MAX, f64::min) / 8.0;
    let y_max = values.iter().copied().fold(0.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min.max(0.001)..y_max.max(1.0)).log_scale())
        .unwrap();
    chart
        .configure_mesh()
        .x_desc("users stored")
        .x_label_formatter(&|x| match *x {
            x if x >= 1e6 => format!("{:.0}M", x / 1e6),
            x if x >= 1e3 => format!("{:.0}k", x / 1e3),
            x => format!("{x:.0}"),
        })
        .y_label_formatter(&|y| if *y < 1.0 { format!("{y:.1}") } else { format!("{y:.0}") })
        .draw()
        .unwrap();
    for (op, color) in OPS {
        let points: Vec<(f64, f64)> =
            rows.iter().filter(|r| r.op == op).map(|r| (r.users as f64, value(r))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .unwrap()
            .label(op)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled()))).unwrap();
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .unwrap();
}
