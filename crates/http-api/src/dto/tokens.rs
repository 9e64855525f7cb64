use serde::Serialize;

/// The superset answer of the legacy token routes (§2.2): every v3.0 client finds its keys.
#[derive(Debug, Serialize)]
#[allow(non_snake_case)]
pub struct LegacyTokenResponse {
    pub token: String,
    pub roomName: String,
    pub participantName: String,
    pub livekitUrl: String,
    pub ws_url: String,
}

/// A room in `POST /rooms/list`.
#[derive(Debug, Serialize)]
pub struct RoomDto {
    pub sid: String,
    pub name: String,
    pub num_participants: u32,
    pub max_participants: u32,
    pub creation_time: i64,
    pub metadata: String,
}

/// `POST /rooms/list` response.
#[derive(Debug, Serialize)]
pub struct RoomList {
    pub rooms: Vec<RoomDto>,
}
