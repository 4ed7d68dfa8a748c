//! The demo shop: user, product, order, payment, analytics and notification services behind
//! an HTTP gateway, running as one process or as several nodes with only the deployment
//! file deciding where each service lives.
