-- Source schema and edge-value rows for TestPostgresTypesRoundTrip.
-- Rows 1..N of each table are loaded before the replication starts (full
-- load); the test then re-inserts, rotates, nulls and deletes them during CDC.
-- Tables without user-defined types are copied in COPY binary format, the
-- others (usertypes) in text format, so both paths are covered.

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s "complicated", really');
CREATE DOMAIN posnum AS numeric(12,2) CONSTRAINT posnum_positive CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE TYPE floatrange AS RANGE (subtype = float8);

CREATE TABLE ints (id int PRIMARY KEY, s smallint, i int, b bigint);
INSERT INTO ints VALUES
  (1, -32768, -2147483648, -9223372036854775808),
  (2, 32767, 2147483647, 9223372036854775807),
  (3, 0, 0, 0),
  (4, NULL, NULL, NULL),
  (5, -1, 1, -1);

CREATE TABLE nums (id int PRIMARY KEY, n numeric, n40 numeric(40,0), n10 numeric(10,5), nneg numeric(7,-3));
INSERT INTO nums VALUES
  (1, 'NaN', 1234567890123456789012345678901234567890, 12345.67891, 1234567000),
  (2, repeat('9', 1000)::numeric, -1234567890123456789012345678901234567890, -0.00001, -9999999000),
  (3, 0.000000000000000000001, 0, 0, 0),
  (4, '-0.000000000000000000001000', 99999999999999999999999999999999999999, 99999.99999, 1000),
  (5, 'Infinity', 1, 1, NULL),
  (6, '-Infinity', -1, -1, 9999999000),
  (7, ('1.' || repeat('0', 998) || '1')::numeric, NULL, NULL, NULL),
  (8, NULL, NULL, NULL, NULL),
  (9, 123456789012345678901234567890.123456789012345678901234567890, 12345678901234567890123456789012345678, 0.5, -1000);

CREATE TABLE floats (id int PRIMARY KEY, r real, d double precision);
INSERT INTO floats VALUES
  (1, 'NaN', 'NaN'),
  (2, 'Infinity', 'Infinity'),
  (3, '-Infinity', '-Infinity'),
  (4, '-0', '-0'),
  (5, '1e-45', '1e-310'),
  (6, '0.1', '0.1'),
  (7, '3.4028235e38', '1.7976931348623157e308'),
  (8, '1.1754944e-38', '2.2250738585072014e-308'),
  (9, NULL, NULL),
  (10, '123456.79', '0.30000000000000004'),
  (11, '0', '5e-324');

CREATE TABLE texts (id int PRIMARY KEY, t text, vc varchar(12), c char(5), qc "char");
INSERT INTO texts VALUES
  (1, '', '', '', NULL),
  (2, 'héllo wörld 日本語 🎉🚀 𝄞', 'emoji 🎉🚀', 'ab', 'x'),
  (3, E'back\\slash \\N \\. tab\there\nnewline\r\ncrlf', E'a\\b\tc', E'\t', E'\\'),
  (4, 'it''s "quoted" ,{}()[]', '"x"', '''', ''''),
  (5, NULL, NULL, NULL, NULL),
  (6, E'line1\n\\.\nline3', E'\\.', ' a ', ' '),
  (7, E'NULL', 'NULL', 'NULL', 'N'),
  (8, repeat('long ', 2000), 'twelve chars', '12345', '1');

CREATE TABLE bytes (id int PRIMARY KEY, b bytea);
INSERT INTO bytes VALUES
  (1, ''),
  (2, '\x00'),
  (3, (SELECT string_agg(set_byte('\x00'::bytea, 0, i), ''::bytea ORDER BY i) FROM generate_series(0, 255) i)),
  (4, NULL),
  (5, '\x5c2e0a5c4e0900');

CREATE TABLE bools (id int PRIMARY KEY, b bool);
INSERT INTO bools VALUES (1, true), (2, false), (3, NULL);

CREATE TABLE times (id int PRIMARY KEY, d date, t time, ttz timetz, ts timestamp, tstz timestamptz, iv interval, ts0 timestamp(0));
INSERT INTO times VALUES
  (1, 'infinity', '00:00:00', '00:00:00+14', 'infinity', 'infinity', '1 year 2 mons 3 days 04:05:06.789012', '2020-01-01 00:00:00'),
  (2, '-infinity', '23:59:59.999999', '23:59:59.999999-14', '-infinity', '-infinity', '-1 year -2 mons +3 days -04:05:06.000001', '1999-12-31 23:59:59'),
  (3, '4713-01-01 BC', '24:00:00', '12:34:56.5+05:30', '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC', '0', NULL),
  (4, '5874897-12-31', '12:00', '01:02:03-08', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00', '-178000000 years', '0001-01-01 00:00:00'),
  (5, '2000-02-29', '01:02:03.000001', '00:00:00.000001+00', '2000-02-29 01:02:03.123456', '2000-02-29 01:02:03.123456+05:45', '1 day -00:00:00.000001', '2000-02-29 01:02:03'),
  (6, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (7, '1970-01-01', '00:00:00.000001', '23:59:59+00', '1970-01-01 00:00:00.000001', '1969-12-31 23:59:59.999999+00', '2147483647 mons 2147483647 days 2562047788:00:54.775807', '1970-01-01 00:00:00');

CREATE TABLE misc (id int PRIMARY KEY, u uuid, o oid, m money, b8 bit(8), vb varbit(20), x xml, tsv tsvector,
  ip inet, net cidr, mac macaddr, mac8 macaddr8, pt point, bx box);
INSERT INTO misc VALUES
  (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 4294967295, '-92233720368547758.08', B'10101010', B'',
     '<a b="1">x &amp; y <![CDATA[<raw>]]></a>', 'a fat cat sat:1A on a mat:2B,3', '192.168.0.1/24', '10.0.0.0/8',
     '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '(1.5,-2)', '((0,0),(1,1))'),
  (2, '00000000-0000-0000-0000-000000000000', 0, '92233720368547758.07', B'00000000', B'11111111111111111111',
     'text only, no element', '''quoted'' ''with space'':3 \\back', '::1', '2001:db8::/32',
     'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff', '(NaN,Infinity)', '((-1e300,1e-300),(0,0))'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 'ffffffff-ffff-ffff-ffff-ffffffffffff', 1, '0.01', B'11111111', B'0',
     '<r xmlns="urn:x">é🎉</r>', '', '2001:db8::1/128', '0.0.0.0/0',
     '00:00:00:00:00:00', '00:00:00:ff:fe:00:00:00', '(-0,0)', '((1,1),(1,1))');

CREATE TABLE jsons (id int PRIMARY KEY, j json, jb jsonb);
INSERT INTO jsons VALUES
  (1, '{"a": 1, "a": 2,   "b" : [1, 2.50, "x"]}', '{"a": 1, "a": 2, "b": [1, 2.50, "x"]}'),
  (2, E'  {\n\t"uni": "\\u00e9🎉",  "esc": "\\"\\\\/\\n\\t"  }  ', '{"uni": "\u00e9🎉", "n": null, "big": 123456789012345678901234567890.123456789}'),
  (3, 'null', 'null'),
  (4, '[]', '{}'),
  (5, '"str"', '1e400'),
  (6, NULL, NULL),
  (7, '{"nul": "\u0000", "deep": [[[[{"x": [true, false, null]}]]]]}', '[1, "2", 3.0, -0, 1E+2]');

CREATE TABLE arrays (id int PRIMARY KEY, ia int[], ta text[], ia2 int[][], lb int[], fa float8[], ba bytea[], na numeric[]);
INSERT INTO arrays VALUES
  (1, '{1,NULL,3}', ARRAY['a', NULL, 'NULL', 'with "quotes"', 'comma,here', 'back\slash', '', ' space ', '{braces}', 'é🎉'],
     '{{1,2},{3,4}}', '[0:1]={1,2}', '{NaN,-0,Infinity,-Infinity,1e-310}', ARRAY['\x00ff'::bytea, NULL, ''::bytea], '{NaN,1.50,-0.000001}'),
  (2, '{}', '{}', '{}', '[-5:-3]={7,8,9}', '{}', '{}', '{}'),
  (3, NULL, '{NULL}', '{{NULL,NULL}}', '[1:1][2:3]={{1,2}}', NULL, NULL, NULL),
  (4, '{-2147483648,2147483647}', '{""}', '{{{1}},{{2}}}', '{5}', '{0.1}', '{"\\x"}', '{Infinity}');

CREATE TABLE usertypes (id int PRIMARY KEY, e mood, ea mood[], dom posnum, comp pair, fr floatrange, compa pair[]);
INSERT INTO usertypes VALUES
  (1, 'happy', '{sad,ok,"it''s \"complicated\", really"}', 0.01, ROW(1, 'a,b "c" \ d'), '[1.5,2.5)', ARRAY[ROW(1, 'x')::pair, NULL]),
  (2, 'it''s "complicated", really', '{}', 9999999999.99, ROW(NULL, NULL), 'empty', '{}'),
  (3, NULL, '{NULL}', NULL, NULL, '(,)', NULL),
  (4, 'sad', NULL, 1, ROW(-1, ''), '[-Infinity,Infinity]', ARRAY[ROW(NULL, 'y')::pair]);

CREATE TABLE ranges (id int PRIMARY KEY, i4 int4range, tz tstzrange, nr numrange, dr daterange, i8m int8multirange);
INSERT INTO ranges VALUES
  (1, '[1,10)', '[2020-01-01 00:00+00,2021-01-01 00:00:00.000001+00)', '(0.5,1.5]', '[2020-01-01,infinity)', '{[1,3),[5,7)}'),
  (2, 'empty', 'empty', 'empty', 'empty', '{}'),
  (3, '(,)', '(,2020-01-01 00:00+00]', '[-1.0,)', '(,)', '{(,)}'),
  (4, NULL, NULL, NULL, NULL, NULL),
  (5, '[-2147483648,2147483647)', '[-infinity,infinity]', '[NaN,NaN]', '[4713-01-01 BC,5874897-12-31)', '{[-9223372036854775808,9223372036854775807)}');

-- Sequences: a serial key plus a bigserial column, and an identity key with a
-- stored generated column.
CREATE TABLE serials (id serial PRIMARY KEY, big bigserial, v text);
INSERT INTO serials (v) SELECT 'row ' || i FROM generate_series(1, 5) i;
SELECT nextval('serials_id_seq'), nextval('serials_id_seq'); -- gaps: next value must still match

CREATE TABLE idents (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text, vlen int GENERATED ALWAYS AS (length(v) * 2) STORED);
INSERT INTO idents (v) VALUES ('a'), ('bb'), (NULL), ('dddd');

-- Range partitions with a default partition.
CREATE TABLE events (id int, k date, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY RANGE (k);
CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES FROM ('2025-01-01') TO ('2025-07-01');
CREATE TABLE events_2025_rest PARTITION OF events_2025 DEFAULT;
CREATE INDEX events_v_idx ON events (v);
INSERT INTO events VALUES (1, '2023-05-01', 'a'), (2, '2024-05-01', 'b'), (3, '1999-01-01', 'c'), (4, '2023-12-31', NULL),
  (5, '2025-03-01', 'e'), (6, '2025-09-01', 'f');

-- Dropped columns before and after the key.
CREATE TABLE dropped (gone1 int, id int PRIMARY KEY, gone2 text, v text, w int);
ALTER TABLE dropped DROP COLUMN gone1, DROP COLUMN gone2;
INSERT INTO dropped VALUES (1, 'a', 1), (2, NULL, NULL), (3, 'c', 3), (4, '', -4);

-- Identifiers that need quoting.
CREATE TABLE "Order Items" (
  "Order ID" serial PRIMARY KEY,
  "select" text,
  "Mixed Case" int,
  "a""b" text,
  "from" date,
  "spaced col" text,
  "é🎉" text
);
CREATE INDEX "Order Items ""idx""" ON "Order Items" ("select", "Mixed Case");
INSERT INTO "Order Items" ("select", "Mixed Case", "a""b", "from", "spaced col", "é🎉") VALUES
  ('x', 1, 'q"uote', '2020-01-01', 'y', 'z'),
  ('where', -1, '', NULL, ' ', 'é'),
  (NULL, NULL, NULL, NULL, NULL, NULL);
