//! `bf chart` and `bf report` on a lake filled by `bf run`: the files are real
//! images of the asked size with the chart's parts drawn, and the report page
//! links a chart for every symbol.

use std::collections::HashMap;
use std::path::Path;

use super::Workspace;

/// A lake with two years of demo_small bars, features and signals.
fn filled() -> Workspace {
    let ws = Workspace::new();
    ws.ok(&[
        "run",
        "--source",
        "synthetic",
        "--symbol-list",
        "demo_small",
        "--start",
        "2022-01-03",
        "--end",
        "2023-12-29",
        "--quiet",
    ]);
    ws
}

/// Pixels per exact colour of a PNG file, and its size.
fn png_colours(path: &Path) -> ((u32, u32), HashMap<[u8; 3], usize>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let mut counts = HashMap::new();
    for pixel in pixels[..info.buffer_size()].chunks(channels) {
        *counts.entry([pixel[0], pixel[1], pixel[2]]).or_default() += 1;
    }
    ((info.width, info.height), counts)
}

#[test]
fn chart_png_has_the_asked_size_and_every_part_drawn() {
    let ws = filled();
    let report = ws.json(&[
        "chart", "AAPL", "--out", "aapl.png", "--width", "1000", "--height", "700",
    ]);
    assert_eq!(report["bars"], 252, "a year of bars by default: {report}");
    let signals = report["signals"].as_u64().unwrap();
    assert_eq!(
        signals as i64,
        ws.scalar(&format!(
            "SELECT count(*) FROM signals WHERE symbol = 'AAPL' AND date >= DATE '{}'",
            report["first"].as_str().unwrap()
        ))
    );
    assert!(signals > 0);

    // Markers of the first strategy by name get the first marker colour.
    let first_strategy_signals = ws.scalar(&format!(
        "SELECT count(*) FROM signals WHERE symbol = 'AAPL' AND date >= DATE '{}' \
         AND strategy = (SELECT min(strategy) FROM signals)",
        report["first"].as_str().unwrap()
    ));
    assert!(first_strategy_signals > 2);

    let ((width, height), colours) = png_colours(&ws.path().join("aapl.png"));
    assert_eq!((width, height), (1000, 700));
    let white = colours[&[255, 255, 255]];
    assert!(white < 1000 * 700 * 95 / 100, "the image is not blank");
    // Rising and falling candles, both averages, the RSI line and the first
    // strategy's markers (a triangle is ~40 pixels; its legend glyph ~50), in
    // the chart's own colours.
    let marker_pixels = 50 + 25 * first_strategy_signals as usize;
    for (part, rgb, least) in [
        ("rising candles", [38, 166, 154], 500),
        ("falling candles", [239, 83, 80], 500),
        ("SMA 50", [33, 150, 243], 300),
        ("SMA 200", [255, 152, 0], 300),
        ("RSI", [126, 87, 194], 300),
        ("first strategy's markers", [142, 36, 170], marker_pixels),
    ] {
        let drawn = colours.get(&rgb).copied().unwrap_or(0);
        assert!(
            drawn >= least,
            "{part} drawn with {drawn} pixels, expected {least}+"
        );
    }
}

#[test]
fn chart_svg_is_valid_xml_of_the_asked_size_from_the_since_date() {
    let ws = filled();
    let report = ws.json(&[
        "chart",
        "msft",
        "--out",
        "msft.svg",
        "--since",
        "2023-06-01",
    ]);
    let bars = ws.scalar(
        "SELECT count(*) FROM features WHERE symbol = 'MSFT' AND date >= DATE '2023-06-01'",
    );
    assert_eq!(report["bars"].as_i64().unwrap(), bars);
    assert_eq!(report["first"], "2023-06-01");

    let text = std::fs::read_to_string(ws.path().join("msft.svg")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let svg = doc.root_element();
    assert_eq!(svg.tag_name().name(), "svg");
    assert_eq!(
        (svg.attribute("width"), svg.attribute("height")),
        (Some("1400"), Some("900"))
    );
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for label in [
        "MSFT · 1d",
        "SMA 50",
        "SMA 200",
        "Bollinger",
        "RSI 14",
        "MACD",
        "2023-06-01",
    ] {
        assert!(
            texts.iter().any(|t| t.contains(label)),
            "label {label:?} in {texts:?}"
        );
    }
    // One polygon per signal marker, plus the band and the legend's glyphs.
    let polygons = doc
        .descendants()
        .filter(|n| n.has_tag_name("polygon"))
        .count();
    assert!(polygons as u64 > report["signals"].as_u64().unwrap());
}

#[test]
fn chart_errors_name_the_file_or_symbol() {
    let ws = filled();
    let output = ws.run(&["chart", "AAPL", "--out", "aapl.jpg"]);
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("aapl.jpg") && said.contains(".png or .svg"),
        "{said}"
    );
    assert!(!ws.path().join("aapl.jpg").exists());

    let output = ws.run(&["chart", "NOPE", "--out", "nope.png"]);
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("no 1d features for NOPE"), "{said}");
}

#[test]
fn report_page_links_a_chart_per_symbol_and_names_missing_ones() {
    let ws = filled();
    let list = ws.path().join("mine.txt");
    std::fs::write(&list, "AAPL\nNVDA\nNOPE\n").unwrap();
    let output = ws.run(&[
        "report",
        "--symbol-list",
        list.to_str().unwrap(),
        "--out",
        "site",
    ]);
    assert_eq!(output.status.code(), Some(1), "a symbol without data fails");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("NOPE"), "{said}");

    let page = std::fs::read_to_string(ws.path().join("site/mine.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("Signal statistics") && page.contains("macd_cross"));
    assert!(page.contains("Symbols without a chart") && page.contains("NOPE"));
    for symbol in ["AAPL", "NVDA"] {
        let src = format!("charts/{symbol}.svg");
        assert!(
            page.contains(&format!("src=\"{src}\"")),
            "{symbol} chart linked"
        );
        let svg = std::fs::read_to_string(ws.path().join("site").join(&src)).unwrap();
        roxmltree::Document::parse(&svg).unwrap();
    }
    assert!(!ws.path().join("site/charts/NOPE.svg").exists());
    // Every stats row counts only the list's symbols.
    let signals = ws.scalar("SELECT count(*) FROM signals WHERE symbol IN ('AAPL', 'NVDA')");
    let json = ws.run(&[
        "report",
        "--symbol-list",
        list.to_str().unwrap(),
        "--out",
        "site",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(summary["signals"].as_i64().unwrap(), signals);
    assert_eq!(summary["charts"], 2);
}
