//! The heartbeats of the last minutes per data plane, for the Regions page's pulse. Kept in
//! this replica's memory only (the store keeps just the latest heartbeat): with several
//! control-plane replicas, each shows the heartbeats it received, a plane's pulse thins
//! out by the share of them the others took.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use ferry_store::now_millis;
use uuid::Uuid;

/// How far back the pulse reaches.
pub const WINDOW_MILLIS: i64 = 10 * 60 * 1000;
/// Most heartbeats kept per plane (one every 2 s for the whole window).
const MAX_KEPT: usize = 300;

fn recent() -> &'static Mutex<HashMap<Uuid, VecDeque<i64>>> {
    static RECENT: OnceLock<Mutex<HashMap<Uuid, VecDeque<i64>>>> = OnceLock::new();
    RECENT.get_or_init(|| Mutex::new(HashMap::new()))
}

pub fn remember(dataplane_id: Uuid) {
    let now = now_millis();
    let Ok(mut recent) = recent().lock() else {
        return;
    };
    // Planes that stopped long ago are forgotten, so the map stays as small as the fleet.
    recent.retain(|_, beats| beats.back().is_some_and(|last| now - last < WINDOW_MILLIS));
    let beats = recent.entry(dataplane_id).or_default();
    beats.push_back(now);
    while beats.len() > MAX_KEPT
        || beats
            .front()
            .is_some_and(|first| now - first > WINDOW_MILLIS)
    {
        beats.pop_front();
    }
}

/// Which of the last `slots` equal slices of the window saw a heartbeat, oldest first.
pub fn pulse(dataplane_id: Uuid, slots: usize) -> Vec<bool> {
    let now = now_millis();
    let mut seen = vec![false; slots];
    let Ok(recent) = recent().lock() else {
        return seen;
    };
    let slot_millis = WINDOW_MILLIS / i64::try_from(slots.max(1)).unwrap_or(1);
    for beat in recent.get(&dataplane_id).into_iter().flatten() {
        let age = now - beat;
        if (0..WINDOW_MILLIS).contains(&age) {
            let from_end = usize::try_from(age / slot_millis).unwrap_or(0);
            if let Some(slot) = slots.checked_sub(from_end + 1) {
                seen[slot] = true;
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_lights_the_latest_slot_only_for_its_plane() {
        let plane = Uuid::new_v4();
        assert_eq!(pulse(plane, 4), vec![false; 4]);
        remember(plane);
        assert_eq!(pulse(plane, 4), vec![false, false, false, true]);
        assert_eq!(pulse(Uuid::new_v4(), 4), vec![false; 4]);
    }
}
