//! Watches the files each dataset was read from and says which datasets changed.
