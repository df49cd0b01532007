//! The JSON of Yahoo's chart API (`/v8/finance/chart/{symbol}`), both ways:
//! parsed by the client and written by the local server. Every quote value is
//! an `Option`, because Yahoo sends `null` for halted or missing bars.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartResponse {
    pub chart: Chart,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chart {
    pub result: Option<Vec<ChartResult>>,
    pub error: Option<ChartError>,
}

/// `chart.error`: an unknown or delisted symbol comes with HTTP 404 and
/// `{"code": "Not Found", "description": "No data found, symbol may be delisted"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartError {
    pub code: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartResult {
    pub meta: Meta,
    /// Bar starts, seconds since the epoch; absent when the range holds no bar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Events>,
    pub indicators: Indicators,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub currency: Option<String>,
    pub symbol: String,
    #[serde(default)]
    pub exchange_name: Option<String>,
    #[serde(default)]
    pub instrument_type: Option<String>,
    #[serde(default)]
    pub first_trade_date: Option<i64>,
    #[serde(default)]
    pub gmtoffset: Option<i64>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// IANA zone of the exchange, e.g. `America/New_York`: daily bars take
    /// their trading date from it.
    pub exchange_timezone_name: String,
    #[serde(default)]
    pub data_granularity: Option<String>,
    /// The exchange's pre-market, regular and after-hours periods of the
    /// current (or, once closed, the coming) trading day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_trading_period: Option<CurrentTradingPeriod>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrentTradingPeriod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<TradingPeriod>,
    pub regular: TradingPeriod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<TradingPeriod>,
}

/// One period, its bounds in seconds since the epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TradingPeriod {
    pub timezone: String,
    pub start: i64,
    pub end: i64,
    pub gmtoffset: i64,
}

/// Dividends and splits keyed by their timestamp as a string, as Yahoo sends them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Events {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dividends: Option<BTreeMap<String, Dividend>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub splits: Option<BTreeMap<String, Split>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dividend {
    pub amount: f64,
    pub date: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    pub date: i64,
    pub numerator: f64,
    pub denominator: f64,
    #[serde(default)]
    pub split_ratio: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Indicators {
    pub quote: Vec<Quote>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjclose: Option<Vec<AdjClose>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Quote {
    #[serde(default)]
    pub open: Vec<Option<f64>>,
    #[serde(default)]
    pub high: Vec<Option<f64>>,
    #[serde(default)]
    pub low: Vec<Option<f64>>,
    #[serde(default)]
    pub close: Vec<Option<f64>>,
    #[serde(default)]
    pub volume: Vec<Option<i64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdjClose {
    #[serde(default)]
    pub adjclose: Vec<Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real response: a null bar, a dividend, a split.
    const REAL_SHAPE: &str = r#"{"chart":{"result":[{"meta":{"currency":"USD","symbol":"AAPL",
      "exchangeName":"NMS","fullExchangeName":"NasdaqGS","instrumentType":"EQUITY",
      "firstTradeDate":345479400,"regularMarketTime":1700859600,"hasPrePostMarketData":true,
      "gmtoffset":-18000,"timezone":"EST","exchangeTimezoneName":"America/New_York",
      "regularMarketPrice":189.97,"dataGranularity":"1d","range":"",
      "currentTradingPeriod":{"pre":{"timezone":"EST","start":1700816400,"end":1700836200,"gmtoffset":-18000},
        "regular":{"timezone":"EST","start":1700836200,"end":1700859600,"gmtoffset":-18000},
        "post":{"timezone":"EST","start":1700859600,"end":1700874000,"gmtoffset":-18000}},
      "validRanges":["1d","5d","1mo","max"]},
      "timestamp":[1598621400,1598880600,1598967000],
      "events":{"dividends":{"1596807000":{"amount":0.82,"date":1596807000}},
        "splits":{"1598880600":{"date":1598880600,"numerator":4.0,"denominator":1.0,"splitRatio":"4:1"}}},
      "indicators":{"quote":[{"open":[504.05,127.58,null],"high":[505.77,131.0,null],
        "low":[498.31,126.0,null],"close":[499.23,129.04,null],"volume":[46907500,225702700,null]}],
        "adjclose":[{"adjclose":[121.67,125.86,null]}]}}],"error":null}}"#;

    #[test]
    fn parses_the_real_response_shape_keeping_nulls() {
        let response: ChartResponse = serde_json::from_str(REAL_SHAPE).unwrap();
        let result = &response.chart.result.unwrap()[0];
        assert_eq!(result.meta.exchange_timezone_name, "America/New_York");
        let periods = result.meta.current_trading_period.as_ref().unwrap();
        assert_eq!(
            (periods.regular.start, periods.regular.end),
            (1700836200, 1700859600)
        );
        assert_eq!(result.timestamp.as_ref().unwrap().len(), 3);
        let quote = &result.indicators.quote[0];
        assert_eq!(quote.close, vec![Some(499.23), Some(129.04), None]);
        assert_eq!(quote.volume[2], None);
        let events = result.events.as_ref().unwrap();
        assert_eq!(events.splits.as_ref().unwrap()["1598880600"].numerator, 4.0);
        assert_eq!(
            events.dividends.as_ref().unwrap()["1596807000"].amount,
            0.82
        );
    }

    #[test]
    fn parses_the_error_shape() {
        let body = r#"{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}"#;
        let response: ChartResponse = serde_json::from_str(body).unwrap();
        assert!(response.chart.result.is_none());
        assert_eq!(response.chart.error.unwrap().code, "Not Found");
    }

    #[test]
    fn a_range_without_bars_has_no_timestamps() {
        let body = r#"{"chart":{"result":[{"meta":{"symbol":"AAPL","exchangeTimezoneName":"America/New_York"},
          "indicators":{"quote":[{}],"adjclose":[{}]}}],"error":null}}"#;
        let response: ChartResponse = serde_json::from_str(body).unwrap();
        let result = &response.chart.result.unwrap()[0];
        assert!(result.timestamp.is_none());
        assert!(result.indicators.quote[0].close.is_empty());
    }
}
