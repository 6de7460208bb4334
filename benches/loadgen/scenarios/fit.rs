//! Least-squares line through (x, y) points, with the standard error of its slope: how
//! the churn scenario tells memory that keeps growing from memory that merely wobbles.
//! A slope within about two standard errors of zero is no evidence of a leak.

/// Slope of the least-squares line and its standard error
/// (`sqrt(Σ residual² / (n − 2) / Σ (x − x̄)²)`). NaN where undefined: the slope needs
/// two distinct x, the error three points.
pub(super) fn slope_with_stderr(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    if points.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    if points.len() < 3 {
        return (slope, f64::NAN);
    }
    let intercept = mean_y - slope * mean_x;
    let ssr: f64 = points
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    (slope, (ssr / (n - 2.0) / sxx).sqrt())
}
