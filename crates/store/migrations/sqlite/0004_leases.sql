-- Short leases for work that one replica at a time should do (the reaper).
CREATE TABLE leases (
    name   TEXT   PRIMARY KEY NOT NULL,
    holder TEXT   NOT NULL,
    until  BIGINT NOT NULL
);
