//! The HTML pages: `/` lists the datasets with their status, `/datasets/NAME` shows one.
