//! What a file holds, as its reader yields it: every component with its codes, their display
//! names, and the rows (codes interned), so that `init` can tell which components vary,
//! which identify a series and which unit each figure has.

use rustc_hash::FxHashMap;

use crate::source::{Component, Origin, Role, Sink};

/// Rows kept for the checks that need them (which components identify a series); a larger
/// file is judged on its first rows.
const MAX_ROWS: usize = 500_000;

#[derive(Debug, Default)]
pub struct Survey {
    pub components: Vec<Component>,
    /// Per component: code -> its index in `codes`.
    index: Vec<FxHashMap<String, u32>>,
    /// Per component: its distinct codes in the order first seen, with their counts.
    pub codes: Vec<Vec<(String, usize)>>,
    /// Per component: code -> display name (the first language given, English preferred).
    pub names: Vec<FxHashMap<String, (String, String)>>,
    /// Per component: its own display name.
    pub component_names: Vec<Option<String>>,
    /// Each row as code indexes, per component.
    pub rows: Vec<Vec<u32>>,
    pub row_count: usize,
    pub errors: Vec<(Origin, String)>,
}

impl Survey {
    /// Index of the first component of this role.
    pub fn role(&self, role: Role) -> Option<usize> {
        self.components.iter().position(|c| c.role == role)
    }

    /// Index of the first component named, case-blind, one of `names`.
    pub fn named(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| {
            self.components
                .iter()
                .position(|c| c.id.eq_ignore_ascii_case(n))
        })
    }

    /// The number of distinct codes of component `c` (empty ones included).
    pub fn distinct(&self, c: usize) -> usize {
        self.codes[c].len()
    }

    /// The code of component `c` in row `r`.
    pub fn code(&self, r: usize, c: usize) -> &str {
        &self.codes[c][self.rows[r][c] as usize].0
    }

    /// The display name of `code` of component `c`, when the file gives one.
    pub fn name(&self, c: usize, code: &str) -> Option<&str> {
        self.names[c].get(code).map(|(_, n)| n.as_str())
    }
}

impl Sink for Survey {
    fn components(&mut self, components: &[Component], _origin: &dyn Fn(usize) -> Origin) -> bool {
        self.components = components.to_vec();
        let n = components.len();
        self.index = vec![FxHashMap::default(); n];
        self.codes = vec![Vec::new(); n];
        self.names = vec![FxHashMap::default(); n];
        self.component_names = vec![None; n];
        true
    }

    fn row(&mut self, fields: &[&str], _origin: &dyn Fn(usize) -> Origin) {
        self.row_count += 1;
        let mut row = Vec::with_capacity(fields.len());
        for (c, f) in fields.iter().enumerate().take(self.codes.len()) {
            let next = self.codes[c].len() as u32;
            let i = *self.index[c].entry(f.to_string()).or_insert(next);
            if i == next {
                self.codes[c].push((f.to_string(), 0));
            }
            self.codes[c][i as usize].1 += 1;
            row.push(i);
        }
        if self.rows.len() < MAX_ROWS {
            self.rows.push(row);
        }
    }

    fn name(&mut self, component: usize, code: &str, lang: &str, name: &str) {
        let Some(names) = self.names.get_mut(component) else {
            return;
        };
        let better = |(l, _): &(String, String)| l != "en" && lang == "en";
        match names.get(code) {
            Some(old) if !better(old) => {}
            _ => {
                names.insert(code.to_string(), (lang.to_string(), name.to_string()));
            }
        }
    }

    fn component_name(&mut self, component: usize, lang: &str, name: &str) {
        if let Some(n) = self.component_names.get_mut(component) {
            if n.is_none() || lang == "en" {
                *n = Some(name.to_string());
            }
        }
    }

    fn error(&mut self, origin: Origin, message: String) {
        self.errors.push((origin, message));
    }
}
